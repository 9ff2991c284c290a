package tsuwsgi.jvm;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;

/**
 * A worker's output buffer: a response's head and small body are gathered here and written
 * in one write(); small complete responses may stay here while the core has already sent
 * the next request (pipelining), to go out together.
 */
final class Out {
  /** Beyond this, data is written rather than gathered. */
  static final int LIMIT = 64 * 1024;

  byte[] buf = new byte[16 * 1024];
  int len;
  private final ByteBuffer[] pair = new ByteBuffer[2];

  void ensure(int extra) {
    if (len + extra > buf.length) {
      byte[] b = new byte[Math.max(buf.length * 2, len + extra)];
      System.arraycopy(buf, 0, b, 0, len);
      buf = b;
    }
  }

  void add(byte[] b, int off, int n) {
    ensure(n);
    System.arraycopy(b, off, buf, len, n);
    len += n;
  }

  void add(byte[] b) {
    add(b, 0, b.length);
  }

  /** A string of chars < 256 (status lines, header names, framing), one byte each. */
  void ascii(String s) {
    int n = s.length();
    ensure(n);
    for (int k = 0; k < n; k++) buf[len++] = (byte) s.charAt(k);
  }

  /** Text as UTF-8 (header values, which are ASCII in the common case). */
  void text(String s) {
    int n = s.length();
    boolean plain = true;
    for (int k = 0; k < n; k++) {
      if (s.charAt(k) >= 0x80) {
        plain = false;
        break;
      }
    }
    if (plain) ascii(s);
    else add(s.getBytes(StandardCharsets.UTF_8));
  }

  void hex(int n) {
    ascii(Integer.toHexString(n));
  }

  /** Write everything gathered. */
  void flush(SocketChannel ch) throws IOException {
    if (len == 0) return;
    ByteBuffer bb = ByteBuffer.wrap(buf, 0, len);
    len = 0;
    while (bb.hasRemaining()) ch.write(bb);
  }

  /** Write everything gathered followed by `data` (no copy of a large body). */
  void flush(SocketChannel ch, byte[] data, int off, int n) throws IOException {
    if (len == 0) {
      ByteBuffer bb = ByteBuffer.wrap(data, off, n);
      while (bb.hasRemaining()) ch.write(bb);
      return;
    }
    pair[0] = ByteBuffer.wrap(buf, 0, len);
    pair[1] = ByteBuffer.wrap(data, off, n);
    len = 0;
    try {
      while (pair[1].hasRemaining()) ch.write(pair);
    } finally {
      pair[0] = null;
      pair[1] = null;
    }
  }
}
