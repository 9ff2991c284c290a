package tsuwsgi.jvm;

import java.io.File;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.HashMap;
import java.util.List;
import java.util.function.BiFunction;

/**
 * Ring (modifier2 1): `--ring-app namespace:function` (or namespace/function), after the
 * `--ring-load` scripts. Clojure is found on the class path at run time (the bridge is
 * compiled without it, so JWSGI users need no Clojure): the Java side only bootstraps it
 * through clojure.java.api.Clojure, and the Ring adapter itself is Clojure code shipped in
 * the bridge jar (tsuwsgi/jvm/ring.clj) that turns the uwsgi vars into a Ring request map
 * and the response map into {status, headers, body} for the shared response code.
 */
final class RingHandler implements Handler {
  private final String spec;
  private final BiFunction<Object, Object, Object> adapter;

  private RingHandler(String spec, BiFunction<Object, Object, Object> adapter) {
    this.spec = spec;
    this.adapter = adapter;
  }

  /** The exception a reflective call into Clojure raised (its own, not the reflection wrapper). */
  private static Throwable unwrap(Throwable t) {
    while (t instanceof InvocationTargetException && t.getCause() != null) t = t.getCause();
    return t;
  }

  @SuppressWarnings("unchecked")
  static RingHandler load(String spec, List<String> scripts, ClassLoader loader) throws LoadError {
    Class<?> clojure;
    try {
      clojure = Class.forName("clojure.java.api.Clojure", true, loader);
    } catch (ClassNotFoundException | LinkageError e) {
      throw new LoadError("Ring app " + spec + ": Clojure is not on the class path: install Debian's clojure package"
          + " (tsuwsgi then adds /usr/share/java/clojure.jar) or add a Clojure jar (or your app's uberjar) with --jvm-classpath");
    }
    String ns;
    String fn;
    int sep = spec.indexOf('/');
    if (sep < 0) sep = spec.indexOf(':');
    if (sep <= 0 || sep == spec.length() - 1) {
      throw new LoadError("invalid --ring-app " + spec + ": use namespace:function (e.g. myapp:handler)");
    }
    ns = spec.substring(0, sep);
    fn = spec.substring(sep + 1);
    String step = "starting Clojure";
    try {
      Method var = clojure.getMethod("var", Object.class, Object.class);
      Method read = clojure.getMethod("read", String.class);
      Method invoke1 = Class.forName("clojure.lang.IFn", true, loader).getMethod("invoke", Object.class);
      Method isBound = Class.forName("clojure.lang.Var", true, loader).getMethod("isBound");
      Object loadFile = var.invoke(null, "clojure.core", "load-file");
      Object require = var.invoke(null, "clojure.core", "require");
      for (String script : scripts) {
        step = "loading " + script;
        File f = new File(script);
        if (f.isFile()) {
          invoke1.invoke(loadFile, f.getAbsolutePath());
        } else {
          // uWSGI's ring-load: a script on the class path (clojure.lang.RT.loadResourceScript).
          Class.forName("clojure.lang.RT", true, loader).getMethod("loadResourceScript", String.class).invoke(null, script);
        }
      }
      step = "finding " + ns + "/" + fn;
      Object handler = var.invoke(null, ns, fn);
      if (!(Boolean) isBound.invoke(handler)) {
        // Not loaded by a script: require the namespace from the class path (an AOT-compiled
        // jar or a .clj beside the classes), as `jvm-class = ns/core__init` does in uWSGI.
        step = "requiring namespace " + ns;
        invoke1.invoke(require, read.invoke(null, ns));
      }
      if (!(Boolean) isBound.invoke(handler)) {
        throw new LoadError("Ring app " + spec + ": namespace " + ns + " defines no function " + fn);
      }
      step = "loading the Ring adapter";
      invoke1.invoke(require, read.invoke(null, "tsuwsgi.jvm.ring"));
      Object make = var.invoke(null, "tsuwsgi.jvm.ring", "adapter");
      Object adapter = invoke1.invoke(make, handler);
      return new RingHandler(spec, (BiFunction<Object, Object, Object>) adapter);
    } catch (LoadError e) {
      throw e;
    } catch (Throwable t) {
      Throwable cause = unwrap(t);
      // Clojure wraps the real error ("Unable to resolve symbol: x") in a CompilerException
      // that only names the file and line: say both.
      Throwable root = cause;
      while (root.getCause() != null && root.getCause() != root) root = root.getCause();
      String why = Bridge.oneLine(cause) + (root != cause ? " (" + Bridge.oneLine(root) + ")" : "");
      throw new LoadError("Ring app " + spec + ": error " + step + ": " + why, cause);
    }
  }

  @Override
  public Object[] call(HashMap<String, Object> env, Body body) throws Throwable {
    java.util.function.Function<Body, java.io.InputStream> wrap = Api.requestBodyFactory;
    Object result = adapter.apply(env, wrap != null ? wrap.apply(body) : body);
    return (Object[]) result;
  }

  @Override
  public String describe() {
    return "Ring app " + spec;
  }
}
