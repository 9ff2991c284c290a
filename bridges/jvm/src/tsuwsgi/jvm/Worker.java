package tsuwsgi.jvm;

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;

/**
 * One serving thread (--threads N runs N of them): accepts a connection on the pool socket,
 * serves it (one request, or many once the core sent the hello packet), accepts again.
 */
final class Worker extends Thread {
  private static final int HELLO_MODIFIER1 = 99;
  private static final int READ_SIZE = 64 * 1024;

  private final Bridge bridge;
  final int index;
  /** Requests completed by this thread (uwsgi.request_id()). */
  volatile long requests;
  /** The connection this thread waits on for the next request, for a graceful stop to wake it. */
  volatile SocketChannel idle;
  /** The body of the request being served (uWSGI's `new uwsgi.RequestBody()`). */
  Body currentBody;

  private SocketChannel ch;
  // Receive buffer: unread bytes are rbuf[rpos..rlim).
  private final byte[] rbuf = new byte[2 * READ_SIZE];
  private int rpos;
  private int rlim;
  private final Out out = new Out();
  private final String core;

  Worker(Bridge bridge, int index) {
    super("tsuwsgi-core-" + index);
    this.bridge = bridge;
    this.index = index;
    this.core = Integer.toString(index);
  }

  @Override
  public void run() {
    ServerSocketChannel listener = bridge.listener;
    while (!bridge.stopping) {
      SocketChannel sock;
      try {
        sock = listener.accept();
      } catch (ClosedChannelException e) {
        return; // graceful stop closed our listener
      } catch (IOException e) {
        if (bridge.stopping) return;
        Bridge.log("jvm bridge: accept(): " + e.getMessage());
        sleepQuietly(100);
        continue;
      }
      if (bridge.stopping) {
        closeQuietly(sock); // too late: the core stopped sending us work
        return;
      }
      try {
        serve(sock);
      } catch (IOException e) {
        // the core closed the connection (or died): nothing to answer
      } catch (Throwable t) {
        Bridge.log(Bridge.stackTrace("jvm bridge: error serving a connection (a bug in the bridge):", t));
      } finally {
        out.len = 0;
        ch = null;
        closeQuietly(sock);
      }
    }
  }

  private static void sleepQuietly(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static void closeQuietly(SocketChannel s) {
    try {
      s.close();
    } catch (IOException e) {
      // gone anyway
    }
  }

  // -- receiving -------------------------------------------------------------------------------

  private final ByteBuffer rview = ByteBuffer.wrap(rbuf);

  /** Read more bytes after the unread ones; false at EOF. */
  private boolean fill() {
    if (rpos == rlim) {
      rpos = 0;
      rlim = 0;
    } else if (rlim == rbuf.length) {
      System.arraycopy(rbuf, rpos, rbuf, 0, rlim - rpos);
      rlim -= rpos;
      rpos = 0;
    }
    ByteBuffer v = rview;
    v.limit(rbuf.length).position(rlim);
    try {
      int n = ch.read(v);
      if (n < 0) return false;
      rlim += n;
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  private int avail() {
    return rlim - rpos;
  }

  /** The next packet's header and vars are already buffered (the core pipelined it). */
  private boolean nextRequestBuffered() {
    if (avail() < 4) return false;
    int size = (rbuf[rpos + 1] & 0xff) | ((rbuf[rpos + 2] & 0xff) << 8);
    return avail() >= 4 + size;
  }

  /** Block until bytes arrive on an idle connection; false at EOF. */
  private boolean waitForPacket() throws IOException {
    out.flush(ch); // responses held back for this moment
    boolean stopping;
    synchronized (bridge.stateLock) {
      stopping = bridge.stopping;
      if (!stopping) idle = ch;
    }
    // Stopping: serve what the core already sent, but do not wait for more. shutdown(SHUT_RD)
    // makes read() return the queued bytes, then EOF.
    if (stopping) Native.shutdownRead(ch);
    try {
      return fill();
    } finally {
      idle = null;
    }
  }

  /** Buffer a whole packet header + vars; returns {modifier1, varsStart, varsSize, modifier2} or null at EOF. */
  private int[] readPacket() throws IOException {
    if (avail() == 0 && !waitForPacket()) return null;
    while (avail() < 4) if (!fill()) return null;
    int size = (rbuf[rpos + 1] & 0xff) | ((rbuf[rpos + 2] & 0xff) << 8);
    while (avail() < 4 + size) {
      if (rbuf.length - rpos < 4 + size && rpos > 0) {
        System.arraycopy(rbuf, rpos, rbuf, 0, rlim - rpos);
        rlim -= rpos;
        rpos = 0;
      }
      if (!fill()) return null;
    }
    int p = rpos;
    rpos = p + 4 + size;
    return new int[] {rbuf[p] & 0xff, p + 4, size, rbuf[p + 3] & 0xff};
  }

  /** The request body, read completely: in memory up to the post-buffering limit, else in an unlinked temp file. */
  private Body readBody(long length) throws IOException {
    if (length == 0) return Body.EMPTY;
    int have = (int) Math.min(avail(), length);
    if (length <= bridge.memoryBodyLimit) {
      byte[] data = new byte[(int) length];
      System.arraycopy(rbuf, rpos, data, 0, have);
      rpos += have;
      ByteBuffer bb = ByteBuffer.wrap(data, have, (int) length - have);
      while (bb.hasRemaining()) {
        if (ch.read(bb) < 0) throw new ClientDisconnected(length - bb.position());
      }
      return new Body(data, (int) length);
    }
    File tmp = File.createTempFile("tsuwsgi-body", null);
    RandomAccessFile file = new RandomAccessFile(tmp, "rw");
    tmp.delete(); // nothing to clean up, whatever happens
    boolean ok = false;
    try {
      file.write(rbuf, rpos, have);
      rpos += have;
      long left = length - have;
      ByteBuffer bb = ByteBuffer.allocate(READ_SIZE);
      while (left > 0) {
        bb.clear();
        if (left < bb.capacity()) bb.limit((int) left);
        int n = ch.read(bb);
        if (n < 0) throw new ClientDisconnected(left);
        file.write(bb.array(), 0, n);
        left -= n;
      }
      ok = true;
      return new Body(file, length);
    } finally {
      if (!ok) file.close();
    }
  }

  static final class ClientDisconnected extends IOException {
    private static final long serialVersionUID = 1L;

    ClientDisconnected(long missing) {
      super("client disconnected while sending the request body (" + missing + " bytes missing)");
    }
  }

  // -- the connection --------------------------------------------------------------------------

  private void serve(SocketChannel sock) throws IOException {
    ch = sock;
    rpos = 0;
    rlim = 0;
    out.len = 0;
    int[] packet = readPacket();
    if (packet == null) return;
    boolean persistent = false;
    if (packet[0] == HELLO_MODIFIER1 && packet[3] == 0) {
      answerHello();
      persistent = true;
      packet = readPacket();
    }
    while (packet != null) {
      if (packet[0] == HELLO_MODIFIER1 && packet[3] == 0) {
        out.flush(ch);
        answerHello();
      } else {
        boolean keep = handle(packet, persistent);
        if (!keep || !persistent) {
          try {
            out.flush(ch);
          } catch (IOException e) {
            // the core is gone
          }
          return;
        }
      }
      if (out.len > 0 && (!nextRequestBuffered() || out.len >= Out.LIMIT)) out.flush(ch);
      packet = readPacket();
    }
  }

  private void answerHello() throws IOException {
    byte[] vars = packVars("pid", Long.toString(bridge.pid), "worker_id", Integer.toString(bridge.workerId), "core", core,
        "bridge_api", Integer.toString(Bridge.BRIDGE_API));
    byte[] pkt = new byte[4 + vars.length];
    pkt[0] = (byte) HELLO_MODIFIER1;
    pkt[1] = (byte) (vars.length & 0xff);
    pkt[2] = (byte) ((vars.length >> 8) & 0xff);
    pkt[3] = 1;
    System.arraycopy(vars, 0, pkt, 4, vars.length);
    out.add(pkt);
    out.flush(ch);
  }

  private static byte[] packVars(String... kv) {
    java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
    for (String s : kv) {
      byte[] x = s.getBytes(StandardCharsets.UTF_8);
      b.write(x.length & 0xff);
      b.write((x.length >> 8) & 0xff);
      b.write(x, 0, x.length);
    }
    return b.toByteArray();
  }

  // -- one request -----------------------------------------------------------------------------

  /** Decode the vars, read the body, run the app, send the response. True if the connection can carry the next packet. */
  private boolean handle(int[] packet, boolean persistent) throws IOException {
    int modifier2 = packet[3];
    int p = packet[1];
    int end = p + packet[2];
    HashMap<String, Object> env = new HashMap<>(64);
    byte[] b = rbuf;
    try {
      while (p < end) {
        int klen = (b[p] & 0xff) | ((b[p + 1] & 0xff) << 8);
        String key = new String(b, p + 2, klen, StandardCharsets.ISO_8859_1);
        p += 2 + klen;
        int vlen = (b[p] & 0xff) | ((b[p + 1] & 0xff) << 8);
        // Values are decoded as UTF-8, as uWSGI's JVM plugin does (NewStringUTF).
        String value = vlen == 0 ? "" : new String(b, p + 2, vlen, StandardCharsets.UTF_8);
        p += 2 + vlen;
        env.put(key, value);
      }
      if (p != end) throw new IllegalArgumentException("vars overrun the block");
    } catch (RuntimeException e) {
      Bridge.log("jvm bridge: invalid uwsgi packet (" + e.getMessage() + "): closing the connection");
      return false;
    }
    long length = 0;
    Object cl = env.get("CONTENT_LENGTH");
    if (cl != null && !((String) cl).isEmpty()) {
      try {
        length = Long.parseLong(((String) cl).trim());
        if (length < 0) throw new NumberFormatException();
      } catch (NumberFormatException e) {
        Bridge.log("jvm bridge: invalid CONTENT_LENGTH " + Json.quote((String) cl) + ": closing the connection");
        return false;
      }
    }
    Body body;
    try {
      body = readBody(length);
    } catch (IOException e) {
      Bridge.log(logLineFor(env, e.getMessage()));
      return false;
    }
    env.put("uwsgi.version", bridge.version);
    env.put("uwsgi.node", bridge.hostname);
    env.put("uwsgi.core", core);
    currentBody = body;
    try {
      return runApp(env, body, modifier2, persistent);
    } finally {
      currentBody = null;
      body.release();
      requests++;
    }
  }

  private boolean runApp(HashMap<String, Object> env, Body body, int modifier2, boolean persistent) throws IOException {
    Object proto = env.get("SERVER_PROTOCOL");
    String protocol = proto == null || ((String) proto).isEmpty() ? "HTTP/1.0" : (String) proto;
    Response res = new Response(ch, out, persistent, "HEAD".equals(env.get("REQUEST_METHOD")), protocol);
    Handler handler = bridge.handlerFor(env, modifier2);
    if (handler == null) {
      Bridge.log(logLineFor(env, "no JVM request handler for modifier2 " + modifier2 + " (" + bridge.handlersLoaded() + ")"));
      res.sendError("Internal Server Error");
      return true;
    }
    Object respBody = null;
    try {
      Object[] r = handler.call(env, body);
      respBody = r[2];
      res.start(r[0], r[1]);
      res.defer = persistent && nextRequestBuffered();
      res.body(respBody, handler.describe());
      return res.finish();
    } catch (Throwable t) {
      return appFailed(res, env, handler, t);
    }
  }

  /** The app (or sending its response) failed. True if the connection is still usable. */
  private boolean appFailed(Response res, HashMap<String, Object> env, Handler handler, Throwable t) {
    if (res.disconnected) {
      Bridge.log(logLineFor(env, "client disconnected: " + t.getMessage()));
      return false;
    }
    Bridge.log(Bridge.stackTrace(logLineFor(env, handler.describe() + " raised an exception"), t));
    if (res.headersSent) return false; // truncated: closing tells the core so (§3.3)
    String text = bridge.catchExceptions ? Bridge.stackTrace(null, t) : "Internal Server Error";
    try {
      res.sendError(text);
    } catch (IOException e) {
      Bridge.log(logLineFor(env, "client disconnected: " + e.getMessage()));
      return false;
    }
    return true;
  }

  static String logLineFor(HashMap<String, Object> env, String reason) {
    Object m = env.get("REQUEST_METHOD");
    Object u = env.get("REQUEST_URI");
    if (u == null || "".equals(u)) u = env.get("PATH_INFO");
    Object a = env.get("REMOTE_ADDR");
    return reason + ", during " + (m == null ? "-" : m) + " " + (u == null ? "-" : u) + " (" + (a == null ? "-" : a) + ")";
  }
}
