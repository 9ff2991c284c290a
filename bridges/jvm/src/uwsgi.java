import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;

/**
 * The `uwsgi` class JVM apps see under tsuwsgi: uWSGI's Java API (uwsgi.jar), same names and
 * signatures, in the unnamed package as uWSGI has it. The bridge's jar comes first on the
 * class path, so this class wins even when a uWSGI config lists uWSGI's own uwsgi.jar.
 *
 * What one bridge process can honour on its own is implemented. The calls that need the
 * cache, RPC, signals, locks or alarms throw UnsupportedOperationException saying the
 * subsystem is pending: they are never silent no-ops. See docs/jvm.md.
 */
public class uwsgi {
  static {
    tsuwsgi.jvm.Api.registerRequestBodyFactory(RequestBody::new);
  }

  /** The options, as uWSGI's uwsgi.opt: single values as String, repeated ones as an ArrayList, flags as Boolean.TRUE. */
  public static HashMap<String, Object> opt = tsuwsgi.jvm.Api.options();
  public static final String VERSION = tsuwsgi.jvm.Api.version();
  public static final String HOSTNAME = tsuwsgi.jvm.Api.hostname();
  public static final int NUMPROC = tsuwsgi.jvm.Api.numproc();
  /** The --pidfile option, or null. */
  public static final String PIDFILE = tsuwsgi.jvm.Api.pidfile();

  public uwsgi() {}

  /** 1-based id of this worker (bridge process); stable across respawns. */
  public static int worker_id() {
    return tsuwsgi.jvm.Api.workerId();
  }

  /** Pid of the supervising process. */
  public static long masterpid() {
    return tsuwsgi.jvm.Api.masterPid();
  }

  /** Bridges run workers only. */
  public static int mule_id() {
    return 0;
  }

  public static int numproc() {
    return NUMPROC;
  }

  public static String version() {
    return VERSION;
  }

  public static String hostname() {
    return HOSTNAME;
  }

  /** Requests completed by the calling thread (uWSGI's per-core counter). */
  public static long request_id() {
    return tsuwsgi.jvm.Api.requestId();
  }

  /** Requests completed by this process. */
  public static long total_requests() {
    return tsuwsgi.jvm.Api.totalRequests();
  }

  /** One line in the server log. */
  public static void log(String message) {
    tsuwsgi.jvm.Api.log(message);
  }

  /** Ask the server to reload the workers gracefully. */
  public static boolean reload() {
    return tsuwsgi.jvm.Api.reload();
  }

  /** Ask the server to shut down. */
  public static boolean stop() {
    return tsuwsgi.jvm.Api.stop();
  }

  // uWSGI's Java API that needs subsystems tsuwsgi does not have yet.

  public static void register_signal(int signum, String target, SignalHandler handler) {
    throw tsuwsgi.jvm.Api.pending("register_signal", "signal framework");
  }

  public static void register_rpc(String name, RpcFunction function) {
    throw tsuwsgi.jvm.Api.pending("register_rpc", "RPC subsystem");
  }

  public static String rpc(String... args) {
    throw tsuwsgi.jvm.Api.pending("rpc", "RPC subsystem");
  }

  public static void lock() {
    throw tsuwsgi.jvm.Api.pending("lock", "locking subsystem");
  }

  public static void unlock() {
    throw tsuwsgi.jvm.Api.pending("unlock", "locking subsystem");
  }

  public static void lock(int num) {
    throw tsuwsgi.jvm.Api.pending("lock", "locking subsystem");
  }

  public static void unlock(int num) {
    throw tsuwsgi.jvm.Api.pending("unlock", "locking subsystem");
  }

  public static byte[] cache_get(String key) {
    throw tsuwsgi.jvm.Api.pending("cache_get", "cache subsystem");
  }

  public static byte[] cache_get(String key, String cache) {
    throw tsuwsgi.jvm.Api.pending("cache_get", "cache subsystem");
  }

  public static void cache_set(String key, byte[] value) {
    throw tsuwsgi.jvm.Api.pending("cache_set", "cache subsystem");
  }

  public static void cache_set(String key, byte[] value, int expires) {
    throw tsuwsgi.jvm.Api.pending("cache_set", "cache subsystem");
  }

  public static void cache_set(String key, byte[] value, int expires, String cache) {
    throw tsuwsgi.jvm.Api.pending("cache_set", "cache subsystem");
  }

  public static void cache_update(String key, byte[] value) {
    throw tsuwsgi.jvm.Api.pending("cache_update", "cache subsystem");
  }

  public static void cache_update(String key, byte[] value, int expires) {
    throw tsuwsgi.jvm.Api.pending("cache_update", "cache subsystem");
  }

  public static void cache_update(String key, byte[] value, int expires, String cache) {
    throw tsuwsgi.jvm.Api.pending("cache_update", "cache subsystem");
  }

  public static void alarm(String name, String message) {
    throw tsuwsgi.jvm.Api.pending("alarm", "alarm subsystem");
  }

  /** An RPC function (uWSGI's interface; registering one is pending in tsuwsgi). */
  public interface RpcFunction {
    String function(String... args);
  }

  /** A signal handler (uWSGI's interface; registering one is pending in tsuwsgi). */
  public interface SignalHandler {
    void function(int signum);
  }

  /**
   * `jwsgi.input`: the request body, an InputStream that also has uWSGI's readLine(byte[])
   * and seek(int). The body is read completely before the app runs, so seek works anywhere.
   */
  public static class RequestBody extends InputStream {
    private final tsuwsgi.jvm.Body body;

    /** The body of the request the calling thread is serving, as in uWSGI. */
    public RequestBody() {
      this(tsuwsgi.jvm.Api.currentBody());
    }

    RequestBody(tsuwsgi.jvm.Body body) {
      this.body = body;
    }

    @Override
    public int read() throws IOException {
      return body.read();
    }

    @Override
    public int read(byte[] b) throws IOException {
      return body.read(b, 0, b.length);
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      return body.read(b, off, len);
    }

    public int readLine(byte[] b) throws IOException {
      return body.readLine(b);
    }

    @Override
    public int available() {
      return body.available();
    }

    @Override
    public long skip(long n) {
      return body.skip(n);
    }

    public void seek(int pos) {
      body.seek(pos);
    }

    public void seek(long pos) {
      body.seek(pos);
    }

    @Override
    public boolean markSupported() {
      return true;
    }

    @Override
    public void mark(int readlimit) {
      body.mark(readlimit);
    }

    @Override
    public void reset() {
      body.reset();
    }
  }
}
