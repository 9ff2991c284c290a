package tsuwsgi.jvm;

import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.channels.Channel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * tsuwsgi's JVM bridge: hosts JWSGI (modifier2 0) and Ring (modifier2 1) handlers and serves
 * them over the uwsgi protocol, following docs/bridge-protocol.md with one variant
 * (docs/jvm.md): Java adopts an inherited socket only on fd 0, so the core gives the pool
 * socket as fd 0 too (System.inheritedChannel()), and the control channel (fd 4) is opened
 * through java.io.FileDescriptor's private field.
 *
 * Shape of the process:
 *   control thread   reads the control channel from the start (stop, stack dump, EOF = exit);
 *   main thread      loads the classes and handlers, starts the workers, says "ready", waits;
 *   N worker threads each accepts a connection and serves it (--threads N).
 *
 * JDK only; Clojure is looked up at run time when a Ring app is configured.
 */
public final class Bridge {
  static final int BRIDGE_API = 1;
  static final int UWSGI_FAILED_APP_CODE = 22;
  private static final long DEFAULT_MEMORY_BODY_LIMIT = 1024 * 1024;

  private static final PrintStream LOG = new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);

  final long pid = ProcessHandle.current().pid();
  final int workerId;
  final int processes;
  final int threads;
  final int backlog;
  final long masterPid;
  final String version;
  final String hostname;
  final String pidfile;
  final boolean catchExceptions;
  final long memoryBodyLimit;
  private final Map<String, Object> config;
  private final Map<String, Object> plugin;

  ServerSocketChannel listener;
  final Object stateLock = new Object();
  volatile boolean stopping;
  private final List<Worker> workers = new ArrayList<>();
  private final CountDownLatch exit = new CountDownLatch(1);
  private OutputStream control;
  private final Object controlLock = new Object();
  private Thread stopThread;

  /** Apps by mountpoint; each holds handlers by modifier2. */
  private final Map<String, Handler[]> apps = new LinkedHashMap<>();
  private Handler[] defaultApp;

  Bridge(Map<String, Object> config) {
    this.config = config;
    this.plugin = Json.obj(config.get("plugin"));
    workerId = (int) Json.num(config, "workerId", 1);
    processes = (int) Math.max(1, Json.num(config, "processes", 1));
    threads = (int) Math.max(1, Json.num(config, "threads", 1));
    backlog = (int) Json.num(config, "listenBacklog", 100);
    masterPid = Json.num(config, "masterPid", 0);
    version = Json.str(config, "version", "");
    String host = Json.str(config, "hostname", null);
    if (host == null) {
      try {
        host = java.net.InetAddress.getLocalHost().getHostName();
      } catch (IOException e) {
        host = "localhost";
      }
    }
    hostname = host;
    Object pf = Json.obj(config.get("options")).get("pidfile");
    pidfile = pf instanceof String ? (String) pf : null;
    catchExceptions = Boolean.TRUE.equals(plugin.get("catchExceptions"));
    long pb = Json.num(plugin, "postBuffering", 0);
    memoryBodyLimit = pb > 0 ? pb : DEFAULT_MEMORY_BODY_LIMIT;
  }

  // -- logging ---------------------------------------------------------------------------------

  /** One line (or block) on fd 2, the server log. */
  static void log(String message) {
    synchronized (LOG) {
      LOG.print(message.endsWith("\n") ? message : message + "\n");
      LOG.flush();
    }
  }

  static String oneLine(Throwable t) {
    if (t == null) return "unknown error";
    String m = t.getMessage();
    return (t.getClass().getName() + (m == null ? "" : ": " + m)).replaceAll("\\s+", " ").trim();
  }

  /** A Java stack trace as Java prints an uncaught one, after an optional first line. */
  static String stackTrace(String first, Throwable t) {
    StringWriter w = new StringWriter();
    if (first != null) w.write(first + "\n");
    t.printStackTrace(new PrintWriter(w));
    return w.toString();
  }

  // -- control channel (§4) --------------------------------------------------------------------

  boolean sendEvent(String json) {
    synchronized (controlLock) {
      try {
        control.write((json + "\n").getBytes(StandardCharsets.UTF_8));
        control.flush();
        return true;
      } catch (IOException e) {
        return false; // the core is gone; EOF on the read side ends us
      }
    }
  }

  private void controlLoop(FileInputStream in) {
    try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
      String line;
      while ((line = r.readLine()) != null) {
        if (!line.isBlank()) handleCommand(line);
      }
    } catch (IOException | RuntimeException e) {
      // fall through: no more control channel
    }
    // EOF: the core died. Leave now, no shutdown hooks (§1).
    LOG.flush();
    Runtime.getRuntime().halt(0);
  }

  private void handleCommand(String line) {
    Map<String, Object> cmd;
    try {
      cmd = Json.obj(Json.parse(line));
    } catch (IllegalArgumentException e) {
      log("jvm bridge: invalid control message " + Json.quote(line.length() > 200 ? line.substring(0, 200) : line));
      return;
    }
    String c = Json.str(cmd, "cmd", "");
    switch (c) {
      case "stop":
        if (Boolean.TRUE.equals(cmd.get("graceful"))) startGracefulStop();
        else {
          LOG.flush();
          Runtime.getRuntime().halt(0);
        }
        break;
      case "stack":
        dumpStacks();
        break;
      default:
        log("jvm bridge: unknown control command " + Json.quote(c));
    }
  }

  private synchronized void startGracefulStop() {
    if (stopThread != null) return;
    stopThread = new Thread(this::gracefulStop, "tsuwsgi-stop");
    stopThread.start();
  }

  /** Stop accepting, wake idle persistent connections, let busy threads finish, exit 0. */
  private void gracefulStop() {
    List<SocketChannel> idle = new ArrayList<>();
    synchronized (stateLock) {
      stopping = true;
      for (Worker w : workers) {
        SocketChannel s = w.idle;
        if (s != null) idle.add(s);
      }
    }
    // Closing our descriptor of the pool socket wakes the threads blocked in accept(); the
    // socket itself stays open (the core and the other bridges hold it).
    try {
      if (listener != null) listener.close();
    } catch (IOException e) {
      // closed anyway
    }
    for (SocketChannel s : idle) {
      // The read side only: a request already queued is still read and answered.
      if (!Native.shutdownRead(s)) {
        try {
          s.shutdownInput();
        } catch (IOException e) {
          // gone
        }
      }
    }
    for (Worker w : workers) {
      try {
        w.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    exit.countDown();
  }

  private void dumpStacks() {
    StringBuilder b = new StringBuilder();
    b.append("*** jvm bridge stack dump (pid ").append(pid).append(", worker ").append(workerId).append(") ***\n");
    for (Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet()) {
      Thread t = e.getKey();
      b.append("thread ").append(t.getName()).append(" (").append(t.getState()).append("):\n");
      for (StackTraceElement f : e.getValue()) b.append("  at ").append(f).append('\n');
    }
    b.append("*** end of the stack dump ***");
    log(b.toString());
  }

  // -- apps (§3.2) -----------------------------------------------------------------------------

  /** The handler for a request: the app by UWSGI_APPID / SCRIPT_NAME, then by modifier2. */
  Handler handlerFor(HashMap<String, Object> env, int modifier2) {
    Handler[] app = defaultApp;
    if (apps.size() > 1) {
      Object id = env.get("UWSGI_APPID");
      Handler[] a = id != null ? apps.get(id) : null;
      if (a == null) {
        Object sn = env.get("SCRIPT_NAME");
        a = sn != null ? apps.get(sn) : null;
      }
      if (a != null) app = a;
    }
    if (app == null) return null;
    Handler h = app[modifier2];
    if (h != null) return h;
    // tsuwsgi: with a single handler loaded, any modifier2 reaches it (no modifier flags needed).
    Handler only = null;
    for (Handler x : app) {
      if (x == null) continue;
      if (only != null) return null;
      only = x;
    }
    return only;
  }

  String handlersLoaded() {
    List<String> names = new ArrayList<>();
    if (defaultApp != null) {
      for (int i = 0; i < defaultApp.length; i++) if (defaultApp[i] != null) names.add(i + " = " + defaultApp[i].describe());
    }
    return names.isEmpty() ? "none loaded" : "loaded: " + String.join(", ", names);
  }

  long totalRequests() {
    long n = 0;
    for (Worker w : workers) n += w.requests;
    return n;
  }

  /** uwsgi.opt as uWSGI fills it: String, ArrayList of String for repeats, Boolean.TRUE for flags. */
  HashMap<String, Object> uwsgiOpt() {
    HashMap<String, Object> out = new HashMap<>();
    for (Map.Entry<String, Object> e : Json.obj(config.get("options")).entrySet()) {
      Object v = e.getValue();
      if (v == null || Boolean.FALSE.equals(v)) continue;
      if (Boolean.TRUE.equals(v)) out.put(e.getKey(), Boolean.TRUE);
      else if (v instanceof List) out.put(e.getKey(), new ArrayList<>(Json.strings(v)));
      else out.put(e.getKey(), String.valueOf(v));
    }
    return out;
  }

  /** A class by name; slash form (org/unbit/Foo, as uWSGI's options write it) accepted. */
  static Class<?> loadClass(String name, ClassLoader loader, String who) throws LoadError {
    String dotted = name.replace('/', '.');
    try {
      return Class.forName(dotted, true, loader);
    } catch (ClassNotFoundException e) {
      throw new LoadError(who + ": class " + dotted + " not found on the class path (" + System.getProperty("java.class.path")
          + "): compile it with javac and add its directory or jar with --jvm-classpath");
    } catch (ExceptionInInitializerError e) {
      Throwable c = e.getCause() != null ? e.getCause() : e;
      throw new LoadError(who + ": the static initialiser of " + dotted + " raised " + oneLine(c), c);
    } catch (LinkageError e) {
      throw new LoadError(who + ": class " + dotted + " cannot be loaded: " + oneLine(e), e);
    }
  }

  /** --jvm-main-class, --jvm-class, then every app's handlers (uWSGI's order). */
  private void load() throws LoadError {
    ClassLoader loader = Thread.currentThread().getContextClassLoader();
    if (loader == null) loader = ClassLoader.getSystemClassLoader();
    for (String name : Json.strings(plugin.get("mainClasses"))) {
      Class<?> c = loadClass(name, loader, "--jvm-main-class " + name);
      runMain(c, name);
    }
    for (String name : Json.strings(plugin.get("classes"))) loadClass(name, loader, "--jvm-class " + name);
    List<String> ringLoad = Json.strings(plugin.get("ringLoad"));
    Object list = config.get("apps");
    if (list instanceof List) {
      for (Object o : (List<?>) list) {
        Map<String, Object> spec = Json.obj(o);
        Map<String, Object> ld = Json.obj(spec.get("load"));
        String mountpoint = Json.str(spec, "mountpoint", "");
        if (!"jvm".equals(Json.str(ld, "kind", ""))) {
          throw new LoadError("unknown app kind " + Json.quote(Json.str(ld, "kind", "")) + " (the jvm plugin loads JWSGI and Ring handlers)");
        }
        Handler[] handlers = new Handler[256];
        String jwsgi = Json.str(ld, "jwsgi", "");
        String ring = Json.str(ld, "ring", "");
        if (!jwsgi.isEmpty()) {
          handlers[0] = JwsgiHandler.load(jwsgi, loader);
          if (workerId == 1) log("JWSGI app \"" + jwsgi + "\" loaded");
        }
        if (!ring.isEmpty()) {
          if (workerId == 1) log("loading clojure environment...");
          handlers[1] = RingHandler.load(ring, ringLoad, loader);
          if (workerId == 1) log("clojure/ring app \"" + ring + "\" loaded");
        }
        if (handlers[0] == null && handlers[1] == null) throw new LoadError("no JWSGI or Ring handler to load (give --jwsgi or --ring-app)");
        if (apps.containsKey(mountpoint)) {
          log("jvm bridge: mountpoint " + Json.quote(mountpoint) + " is already taken, app ignored");
          continue;
        }
        apps.put(mountpoint, handlers);
      }
    }
    if (apps.isEmpty()) throw new LoadError("no app to load (the configuration lists none)");
    defaultApp = apps.containsKey("") ? apps.get("") : apps.values().iterator().next();
  }

  /** uWSGI: main(String[]) if the class has one, else main(). */
  private static void runMain(Class<?> c, String name) throws LoadError {
    Method m = null;
    try {
      m = c.getDeclaredMethod("main", String[].class);
    } catch (NoSuchMethodException e) {
      try {
        m = c.getDeclaredMethod("main");
      } catch (NoSuchMethodException e2) {
        throw new LoadError("--jvm-main-class " + name + ": class " + c.getName() + " has no static main() method");
      }
    }
    if (!Modifier.isStatic(m.getModifiers())) throw new LoadError("--jvm-main-class " + name + ": main() of " + c.getName() + " is not static");
    try {
      m.setAccessible(true);
      if (m.getParameterCount() == 1) m.invoke(null, (Object) new String[0]);
      else m.invoke(null);
    } catch (java.lang.reflect.InvocationTargetException e) {
      Throwable t = e.getCause();
      throw new LoadError("--jvm-main-class " + name + ": main() raised " + oneLine(t), t);
    } catch (ReflectiveOperationException | RuntimeException e) {
      throw new LoadError("--jvm-main-class " + name + ": cannot call main(): " + oneLine(e), e);
    }
  }

  // -- start-up --------------------------------------------------------------------------------

  private void start() throws IOException, ReflectiveOperationException {
    try {
      Native.listen(listener, backlog);
    } catch (IOException e) {
      throw e;
    }
    for (int i = 0; i < threads; i++) workers.add(new Worker(this, i));
    for (Worker w : workers) w.start();
    StringBuilder appList = new StringBuilder("[");
    int i = 0;
    for (String mp : apps.keySet()) {
      if (i > 0) appList.append(',');
      appList.append("{\"id\":").append(i++).append(",\"mountpoint\":").append(Json.quote(mp)).append('}');
    }
    appList.append(']');
    sendEvent("{\"event\":\"ready\",\"pid\":" + pid + ",\"runtime\":" + Json.quote(System.getProperty("java.vm.name", "Java"))
        + ",\"runtimeVersion\":" + Json.quote(System.getProperty("java.version", "")) + ",\"bridgeApi\":" + BRIDGE_API
        + ",\"threads\":" + threads + ",\"apps\":" + appList + "}");
  }

  private static void fatal(String message) {
    log(message);
    LOG.flush();
    Runtime.getRuntime().halt(1);
  }

  public static void main(String[] args) {
    ignoreSigint();
    String raw = System.getenv("TSUWSGI_BRIDGE_CONFIG");
    if (raw == null) fatal("jvm bridge: TSUWSGI_BRIDGE_CONFIG is not set; this program is started by tsuwsgi (see docs/bridge-protocol.md, docs/jvm.md)");
    Map<String, Object> config;
    try {
      config = Json.obj(Json.parse(raw));
    } catch (IllegalArgumentException e) {
      fatal("jvm bridge: TSUWSGI_BRIDGE_CONFIG is not valid JSON: " + e.getMessage());
      return;
    }
    Bridge bridge = new Bridge(config);

    // The control channel (fd 4): java.io cannot open an inherited fd but 0, 1 and 2.
    FileInputStream controlIn;
    int controlFd = (int) parseFd(System.getenv("TSUWSGI_CONTROL_FD"), 4);
    try {
      FileDescriptor fd = Native.fd(controlFd);
      controlIn = new FileInputStream(fd);
      bridge.control = new FileOutputStream(fd);
    } catch (ReflectiveOperationException | RuntimeException e) {
      fatal("jvm bridge: cannot open the control channel (fd " + controlFd + "): " + oneLine(e)
          + "; start the JVM with --add-opens java.base/java.io=ALL-UNNAMED (tsuwsgi does)");
      return;
    }
    // The pool socket, adopted from fd 0 (JEP 380: a listening unix socket there is a ServerSocketChannel).
    Channel inherited;
    try {
      inherited = System.inheritedChannel();
    } catch (IOException | RuntimeException e) {
      inherited = null;
    }
    if (!(inherited instanceof ServerSocketChannel)) {
      fatal("jvm bridge: fd 0 is not the pool socket (got " + (inherited == null ? "no socket" : inherited.getClass().getName())
          + "); this program is started by tsuwsgi, which passes the pool socket on fd 0 (see docs/jvm.md)");
      return;
    }
    bridge.listener = (ServerSocketChannel) inherited;
    FileInputStream ci = controlIn;
    Thread controlThread = new Thread(() -> bridge.controlLoop(ci), "tsuwsgi-control");
    controlThread.setDaemon(true);
    controlThread.start();

    Api.bridge = bridge;
    try {
      // Initialise the `uwsgi` API class (it registers the uwsgi.RequestBody wrapper).
      Class.forName("uwsgi", true, Bridge.class.getClassLoader());
    } catch (ClassNotFoundException | LinkageError e) {
      log("jvm bridge: the uwsgi API class could not be initialised: " + oneLine(e));
    }
    try {
      bridge.load();
    } catch (LoadError e) {
      String details = e.getCause() != null ? stackTrace(e.getMessage(), e.getCause()) : e.getMessage();
      log(details);
      bridge.sendEvent("{\"event\":\"load-failed\",\"app\":0,\"message\":" + Json.quote(e.getMessage()) + ",\"details\":" + Json.quote(details) + "}");
      LOG.flush();
      Runtime.getRuntime().halt(UWSGI_FAILED_APP_CODE);
    } catch (Throwable t) {
      String details = stackTrace("jvm bridge: error while loading the apps:", t);
      log(details);
      bridge.sendEvent("{\"event\":\"load-failed\",\"app\":0,\"message\":" + Json.quote(oneLine(t)) + ",\"details\":" + Json.quote(details) + "}");
      LOG.flush();
      Runtime.getRuntime().halt(UWSGI_FAILED_APP_CODE);
    }
    try {
      bridge.start();
    } catch (IOException | ReflectiveOperationException | RuntimeException e) {
      fatal("jvm bridge: cannot listen on the pool socket: " + oneLine(e)
          + " (the JVM needs --add-opens java.base/sun.nio.ch=ALL-UNNAMED, which tsuwsgi passes)");
    }
    try {
      bridge.exit.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    LOG.flush();
    System.exit(0); // runs the app's shutdown hooks
  }

  private static long parseFd(String v, long def) {
    if (v == null) return def;
    try {
      return Long.parseLong(v.trim());
    } catch (NumberFormatException e) {
      return def;
    }
  }

  /** Ctrl-C in a terminal signals the whole process group: the core decides how we stop. */
  private static void ignoreSigint() {
    try {
      Class<?> signal = Class.forName("sun.misc.Signal");
      Class<?> handler = Class.forName("sun.misc.SignalHandler");
      Object ign = handler.getField("SIG_IGN").get(null);
      Object sigint = signal.getConstructor(String.class).newInstance("INT");
      signal.getMethod("handle", signal, handler).invoke(null, sigint, ign);
    } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
      // not fatal: the core still stops us through the control channel
    }
  }
}
