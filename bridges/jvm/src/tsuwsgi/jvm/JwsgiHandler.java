package tsuwsgi.jvm;

import java.io.InputStream;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.HashMap;
import java.util.List;

/**
 * JWSGI (modifier2 0): `--jwsgi Class:method` (method defaults to `application`), a method
 * taking the env HashMap and returning Object[]{status, headers, body}. As in uWSGI, a
 * static method is called directly; otherwise the class is instantiated once with its
 * no-argument constructor (a Scala `object`, a Groovy script class) and the method called on
 * that instance.
 */
final class JwsgiHandler implements Handler {
  private final String spec;
  private final MethodHandle target;

  private JwsgiHandler(String spec, MethodHandle target) {
    this.spec = spec;
    this.target = target;
  }

  static JwsgiHandler load(String spec, ClassLoader loader) throws LoadError {
    String className = spec;
    String method = "application";
    int colon = spec.indexOf(':');
    if (colon >= 0) {
      className = spec.substring(0, colon);
      method = spec.substring(colon + 1);
    }
    if (className.isEmpty() || method.isEmpty()) {
      throw new LoadError("invalid --jwsgi " + spec + ": use Class:method (e.g. MyApp:application)");
    }
    Class<?> c = Bridge.loadClass(className, loader, "JWSGI app " + spec);
    Method m = null;
    for (Method candidate : c.getMethods()) {
      if (candidate.getName().equals(method) && accepts(candidate)) {
        m = candidate;
        break;
      }
    }
    if (m == null) {
      for (Method candidate : c.getDeclaredMethods()) {
        if (candidate.getName().equals(method) && accepts(candidate)) {
          m = candidate;
          break;
        }
      }
    }
    if (m == null) {
      throw new LoadError("JWSGI app " + spec + ": class " + c.getName() + " has no method " + method
          + "(java.util.HashMap env) (the JWSGI entry point: public static Object[] " + method + "(HashMap env))");
    }
    try {
      m.setAccessible(true);
      MethodHandle h = MethodHandles.lookup().unreflect(m);
      if (!Modifier.isStatic(m.getModifiers())) {
        Object instance;
        try {
          java.lang.reflect.Constructor<?> ctor = c.getDeclaredConstructor();
          ctor.setAccessible(true);
          instance = ctor.newInstance();
        } catch (NoSuchMethodException e) {
          throw new LoadError("JWSGI app " + spec + ": " + method + " is not static and class " + c.getName()
              + " has no constructor without arguments to make an instance with");
        } catch (java.lang.reflect.InvocationTargetException e) {
          throw new LoadError("JWSGI app " + spec + ": the constructor of " + c.getName() + " raised "
              + Bridge.oneLine(e.getCause()), e.getCause());
        }
        h = h.bindTo(instance);
      }
      return new JwsgiHandler(spec, h.asType(h.type().changeParameterType(0, Object.class).changeReturnType(Object.class)));
    } catch (RuntimeException | ReflectiveOperationException e) {
      throw new LoadError("JWSGI app " + spec + ": cannot call " + c.getName() + "." + method + ": " + Bridge.oneLine(e), e);
    }
  }

  private static boolean accepts(Method m) {
    Class<?>[] p = m.getParameterTypes();
    return p.length == 1 && p[0].isAssignableFrom(HashMap.class);
  }

  @Override
  public Object[] call(HashMap<String, Object> env, Body body) throws Throwable {
    java.util.function.Function<Body, InputStream> wrap = Api.requestBodyFactory;
    env.put("jwsgi.input", wrap != null ? wrap.apply(body) : body);
    Object result = target.invoke((Object) env);
    return toTriple(result, "JWSGI app " + spec);
  }

  /** Object[3] (the JWSGI contract) or a 3-element List (Groovy, Scala, Clojure vectors). */
  static Object[] toTriple(Object result, String who) {
    if (result instanceof Object[] && ((Object[]) result).length == 3) return (Object[]) result;
    if (result instanceof List && ((List<?>) result).size() == 3) return ((List<?>) result).toArray();
    String got = result == null ? "null" : result instanceof Object[] ? "an array of " + ((Object[]) result).length + " elements"
        : "a " + result.getClass().getName();
    throw new IllegalStateException("invalid JWSGI response from " + who + ": expected Object[]{status, headers, body}, got " + got);
  }

  @Override
  public String describe() {
    return "JWSGI app " + spec;
  }
}
