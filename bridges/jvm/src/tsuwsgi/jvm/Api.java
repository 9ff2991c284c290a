package tsuwsgi.jvm;

import java.io.InputStream;
import java.util.function.Function;

/**
 * What the `uwsgi` class (the JVM's uwsgi API, in the unnamed package as in uWSGI's
 * uwsgi.jar) reads from the bridge. The unnamed package cannot be imported from a named one,
 * so the bridge never names `uwsgi`: `uwsgi` calls in here, and registers how to wrap a
 * request body as a uwsgi.RequestBody when it is initialised.
 */
public final class Api {
  private Api() {}

  static volatile Bridge bridge;
  /** Set by uwsgi's static initialiser: Body -> uwsgi.RequestBody. */
  static volatile Function<Body, InputStream> requestBodyFactory;

  public static void registerRequestBodyFactory(Function<Body, InputStream> f) {
    requestBodyFactory = f;
  }

  public static int workerId() {
    Bridge b = bridge;
    return b == null ? 0 : b.workerId;
  }

  public static long masterPid() {
    Bridge b = bridge;
    return b == null ? 0 : b.masterPid;
  }

  public static int numproc() {
    Bridge b = bridge;
    return b == null ? 1 : b.processes;
  }

  public static String version() {
    Bridge b = bridge;
    return b == null ? "" : b.version;
  }

  public static String hostname() {
    Bridge b = bridge;
    return b == null ? "" : b.hostname;
  }

  public static String pidfile() {
    Bridge b = bridge;
    return b == null ? null : b.pidfile;
  }

  public static java.util.HashMap<String, Object> options() {
    Bridge b = bridge;
    return b == null ? new java.util.HashMap<>() : b.uwsgiOpt();
  }

  /** The body of the request the calling thread is serving (uWSGI's `new uwsgi.RequestBody()`). */
  public static Body currentBody() {
    Thread t = Thread.currentThread();
    if (t instanceof Worker) {
      Body body = ((Worker) t).currentBody;
      if (body != null) return body;
    }
    return Body.EMPTY;
  }

  /** Requests completed by the calling thread. */
  public static long requestId() {
    Thread t = Thread.currentThread();
    return t instanceof Worker ? ((Worker) t).requests : 0;
  }

  public static long totalRequests() {
    Bridge b = bridge;
    return b == null ? 0 : b.totalRequests();
  }

  public static void log(String message) {
    Bridge.log(message);
  }

  public static boolean reload() {
    Bridge b = bridge;
    return b != null && b.sendEvent("{\"event\":\"reload\"}");
  }

  public static boolean stop() {
    Bridge b = bridge;
    return b != null && b.sendEvent("{\"event\":\"stop\"}");
  }

  /** For the parts of uWSGI's Java API that need subsystems tsuwsgi does not have yet. */
  public static UnsupportedOperationException pending(String function, String subsystem) {
    return new UnsupportedOperationException(
        "uwsgi." + function + "(): the " + subsystem + " is pending in tsuwsgi (not implemented yet); see docs/jvm.md");
  }
}
