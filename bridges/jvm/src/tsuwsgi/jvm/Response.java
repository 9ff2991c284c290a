package tsuwsgi.jvm;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.RandomAccess;

/**
 * One response: the app's {status, headers, body} turned into HTTP/1.x bytes with the
 * framing docs/bridge-protocol.md §3.1 asks for (self-delimiting on persistent connections,
 * no body for HEAD/1xx/204/304), streamed as the body produces it.
 *
 * Body types (uWSGI's JVM plugin): String, byte[], String[], java.io.File (sent with
 * sendfile), InputStream (streamed, then closed), any Iterable of String/byte[]/objects
 * (their toString), streamed, and null (empty).
 */
final class Response {
  static final int MODE_NONE = 0; // no body bytes may be sent
  static final int MODE_RAW = 1; // the connection end delimits, or the app framed the body itself
  static final int MODE_LENGTH = 2; // exactly Content-Length bytes
  static final int MODE_CHUNKED = 3; // we added Transfer-Encoding: chunked

  /** A body up to this size is copied behind the head; bigger ones are written from where they are. */
  private static final int SMALL_BODY = 16 * 1024;
  private static final byte[] CRLF = {'\r', '\n'};
  private static final byte[] LAST_CHUNK = {'0', '\r', '\n', '\r', '\n'};

  private final SocketChannel ch;
  private final Out out;
  private final boolean persistent;
  private final boolean isHead;
  private final String protocol;

  int code;
  private final StringBuilder head = new StringBuilder(256);
  private long contentLength = -1;
  private boolean appFramed;
  boolean headersSent;
  /** A write to the connection failed: the client (the core) is gone. */
  boolean disconnected;
  private int mode;
  private long remaining;
  /** Hold the response in the buffer (the next request is already here). */
  boolean defer;

  Response(SocketChannel ch, Out out, boolean persistent, boolean isHead, String protocol) {
    this.ch = ch;
    this.out = out;
    this.persistent = persistent;
    this.isHead = isHead;
    this.protocol = protocol;
  }

  // -- status and headers -------------------------------------------------------------------

  void start(Object status, Object headers) {
    statusLine(status);
    if (headers == null) return;
    if (!(headers instanceof Map)) {
      throw new IllegalStateException("invalid response headers: expected a Map (java.util.HashMap), got " + headers.getClass().getName());
    }
    for (Map.Entry<?, ?> e : ((Map<?, ?>) headers).entrySet()) {
      Object k = e.getKey();
      String name = headerName(k);
      Object v = e.getValue();
      if (v == null) continue;
      if (v instanceof String) {
        addHeader(name, (String) v);
      } else if (v instanceof Object[]) {
        for (Object item : (Object[]) v) if (item != null) addHeader(name, item.toString());
      } else if (v instanceof Iterable) {
        for (Object item : (Iterable<?>) v) if (item != null) addHeader(name, item.toString());
      } else {
        addHeader(name, v.toString());
      }
    }
  }

  private static String headerName(Object k) {
    if (!(k instanceof String)) {
      throw new IllegalStateException("invalid response header name " + k + ": header names must be Strings");
    }
    String name = (String) k;
    if (name.isEmpty()) throw new IllegalStateException("invalid response header name \"\"");
    for (int i = 0; i < name.length(); i++) {
      char c = name.charAt(i);
      boolean token = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || "!#$%&'*+-.^_`|~".indexOf(c) >= 0;
      if (!token) throw new IllegalStateException("invalid response header name " + Json.quote(name));
    }
    return name;
  }

  private void addHeader(String name, String value) {
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        throw new IllegalStateException("invalid value for response header " + name + ": " + Json.quote(value));
      }
    }
    if (name.length() == 14 && name.equalsIgnoreCase("Content-Length")) {
      String t = value.trim();
      try {
        contentLength = Long.parseLong(t);
        if (contentLength < 0) throw new NumberFormatException();
      } catch (NumberFormatException e) {
        throw new IllegalStateException("invalid Content-Length " + Json.quote(value));
      }
    } else if (name.length() == 17 && name.equalsIgnoreCase("Transfer-Encoding")) {
      appFramed = true;
    }
    head.append("\r\n").append(name).append(": ").append(value);
  }

  private void statusLine(Object status) {
    String reason = null;
    if (status instanceof Number) {
      code = ((Number) status).intValue();
    } else if (status instanceof String) {
      String s = ((String) status).trim();
      int sp = s.indexOf(' ');
      String digits = sp < 0 ? s : s.substring(0, sp);
      try {
        code = digits.length() == 3 ? Integer.parseInt(digits) : -1;
      } catch (NumberFormatException e) {
        code = -1;
      }
      if (sp >= 0) reason = s.substring(sp + 1);
    } else {
      code = -1;
    }
    if (code < 100 || code > 999) {
      throw new IllegalStateException("invalid response status " + (status == null ? "null" : Json.quote(status.toString()))
          + " (expected an Integer such as 200)");
    }
    if (reason != null) {
      for (int i = 0; i < reason.length(); i++) {
        if (reason.charAt(i) < 0x20) throw new IllegalStateException("invalid response status " + Json.quote(status.toString()));
      }
    }
    head.setLength(0);
    head.append(protocol).append(' ').append(code).append(' ').append(reason != null ? reason : Status.reason(code));
  }

  // -- framing --------------------------------------------------------------------------------

  /** Decide the framing and put the head in the output buffer. known < 0: length unknown (streamed). */
  private void commit(long known) {
    int m;
    if (code < 200 || code == 204 || code == 304) {
      m = MODE_NONE;
    } else if (contentLength >= 0) {
      m = MODE_LENGTH;
      remaining = contentLength;
    } else if (appFramed) {
      m = MODE_RAW;
    } else if (known >= 0) {
      head.append("\r\nContent-Length: ").append(known);
      m = MODE_LENGTH;
      remaining = known;
    } else if (isHead) {
      m = MODE_NONE;
    } else if (persistent) {
      head.append("\r\nTransfer-Encoding: chunked");
      m = MODE_CHUNKED;
    } else {
      m = MODE_RAW;
    }
    if (isHead) m = MODE_NONE;
    mode = m;
    headersSent = true;
    head.append("\r\n\r\n");
    out.text(head.toString());
  }

  private void flush() throws IOException {
    if (defer) return;
    try {
      out.flush(ch);
    } catch (IOException e) {
      disconnected = true;
      throw e;
    }
  }

  /** A whole body of known bytes (String, byte[]). */
  private void sendWhole(byte[] data) throws IOException {
    commit(data.length);
    int n = clipCount(data.length);
    if (n == 0) {
      flush();
    } else if (n <= SMALL_BODY || (defer && out.len + n <= Out.LIMIT)) {
      out.add(data, 0, n);
      flush();
    } else {
      defer = false;
      try {
        out.flush(ch, data, 0, n);
      } catch (IOException e) {
        disconnected = true;
        throw e;
      }
    }
  }

  /** How many of n bytes may be sent now (Content-Length clipping, no body for HEAD...). */
  private int clipCount(int n) {
    switch (mode) {
      case MODE_NONE:
        return 0;
      case MODE_LENGTH: {
        int k = (int) Math.min(n, remaining);
        remaining -= k;
        return k;
      }
      default:
        return n;
    }
  }

  /** One streamed chunk. */
  void write(byte[] data, int off, int n) throws IOException {
    if (n == 0) return;
    defer = false; // a streamed body is never held back
    if (!headersSent) commit(-1);
    switch (mode) {
      case MODE_CHUNKED:
        out.hex(n);
        out.add(CRLF);
        if (n <= SMALL_BODY) {
          out.add(data, off, n);
          out.add(CRLF);
          flush();
        } else {
          writeThrough(data, off, n);
          out.add(CRLF);
        }
        return;
      case MODE_NONE:
        flush();
        return;
      default: {
        int k = clipCount(n);
        if (k <= SMALL_BODY) {
          out.add(data, off, k);
          flush();
        } else {
          writeThrough(data, off, k);
        }
      }
    }
  }

  private void writeThrough(byte[] data, int off, int n) throws IOException {
    try {
      out.flush(ch, data, off, n);
    } catch (IOException e) {
      disconnected = true;
      throw e;
    }
  }

  // -- bodies ---------------------------------------------------------------------------------

  void body(Object body, String who) throws IOException {
    if (body == null) {
      sendWhole(new byte[0]);
    } else if (body instanceof String) {
      sendWhole(((String) body).getBytes(StandardCharsets.UTF_8));
    } else if (body instanceof byte[]) {
      sendWhole((byte[]) body);
    } else if (body instanceof File) {
      sendFile((File) body);
    } else if (body instanceof InputStream) {
      try (InputStream in = (InputStream) body) {
        byte[] buf = new byte[32 * 1024];
        int n;
        while ((n = in.read(buf)) >= 0) write(buf, 0, n);
      }
    } else if (body instanceof Object[]) {
      sendParts(java.util.Arrays.asList((Object[]) body), who);
    } else if (body instanceof List && body instanceof RandomAccess) {
      sendParts((List<?>) body, who);
    } else if (body instanceof Iterable) {
      Iterator<?> it = ((Iterable<?>) body).iterator();
      try {
        while (it.hasNext()) {
          byte[] chunk = chunkBytes(it.next(), who);
          write(chunk, 0, chunk.length);
        }
      } finally {
        if (body instanceof AutoCloseable) closeQuietly((AutoCloseable) body);
      }
    } else {
      throw new IllegalStateException("unsupported response body type " + body.getClass().getName() + " from " + who
          + " (use a String, byte[], String[], java.io.File, InputStream or an Iterable of String/byte[])");
    }
  }

  private static void closeQuietly(AutoCloseable c) {
    try {
      c.close();
    } catch (Exception e) {
      Bridge.log("error closing the response body: " + Bridge.oneLine(e));
    }
  }

  private static byte[] chunkBytes(Object o, String who) {
    if (o instanceof byte[]) return (byte[]) o;
    if (o instanceof String) return ((String) o).getBytes(StandardCharsets.UTF_8);
    if (o == null) return new byte[0];
    return o.toString().getBytes(StandardCharsets.UTF_8);
  }

  /** A list of known parts: one Content-Length, one write for small responses. */
  private void sendParts(List<?> parts, String who) throws IOException {
    int count = parts.size();
    byte[][] chunks = new byte[count][];
    long total = 0;
    for (int i = 0; i < count; i++) {
      chunks[i] = chunkBytes(parts.get(i), who);
      total += chunks[i].length;
    }
    if (total <= Out.LIMIT) {
      commit(total);
      for (byte[] c : chunks) {
        int k = clipCount(c.length);
        if (k > 0) out.add(c, 0, k);
      }
      flush();
    } else {
      commit(total);
      flush();
      for (byte[] c : chunks) {
        int k = clipCount(c.length);
        if (k > 0) writeThrough(c, 0, k);
      }
    }
  }

  /** A java.io.File body: Content-Length from its size, bytes with sendfile (FileChannel.transferTo). */
  private void sendFile(File f) throws IOException {
    try (FileChannel fc = FileChannel.open(f.toPath(), StandardOpenOption.READ)) {
      long size = fc.size();
      commit(size);
      defer = false;
      flush();
      long count;
      switch (mode) {
        case MODE_NONE:
          count = 0;
          break;
        case MODE_LENGTH:
          count = Math.min(size, remaining);
          remaining -= count;
          break;
        default:
          count = size;
      }
      long pos = 0;
      try {
        while (pos < count) {
          long n = fc.transferTo(pos, count - pos, ch);
          if (n <= 0) break;
          pos += n;
        }
      } catch (IOException e) {
        disconnected = true;
        throw e;
      }
      if (pos < count && mode == MODE_LENGTH) remaining += count - pos;
    }
  }

  /** End the response. True when the connection can carry another request. */
  boolean finish() throws IOException {
    if (!headersSent) {
      commit(0);
      flush();
    }
    if (mode == MODE_CHUNKED) {
      out.add(LAST_CHUNK);
      flush();
    } else if (mode == MODE_LENGTH && remaining > 0) {
      Bridge.log("response shorter than its Content-Length (" + remaining + " bytes missing): closing the connection");
      return false;
    }
    return true;
  }

  /** Replace the response not yet sent by a 500 (bridge-protocol §3.3). */
  void sendError(String text) throws IOException {
    byte[] body = text.getBytes(StandardCharsets.UTF_8);
    headersSent = true;
    out.ascii(protocol + " 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: " + body.length + "\r\n\r\n");
    if (!isHead) out.add(body);
    defer = false;
    flush();
  }
}
