package tsuwsgi.jvm;

import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;

/**
 * A request body, read completely before the app runs (so it can seek, as uWSGI's
 * post-buffered uwsgi.RequestBody does): in memory up to the --post-buffering limit (1 MiB
 * by default), else in an unlinked temporary file. The app sees it as `jwsgi.input` (a
 * uwsgi.RequestBody wrapping this) or Ring's `:body`.
 */
public class Body extends InputStream {
  /** The body of every request without one: stateless, so shared. */
  static final Body EMPTY = new Body(new byte[0], 0);

  private final byte[] mem;
  private final RandomAccessFile file;
  private final long length;
  private long pos;
  private long mark;

  Body(byte[] mem, int length) {
    this.mem = mem;
    this.file = null;
    this.length = length;
  }

  Body(RandomAccessFile file, long length) {
    this.mem = null;
    this.file = file;
    this.length = length;
  }

  /** Total size in bytes (CONTENT_LENGTH). */
  public long length() {
    return length;
  }

  @Override
  public int read() throws IOException {
    if (pos >= length) return -1;
    if (mem != null) return mem[(int) pos++] & 0xff;
    synchronized (this) {
      file.seek(pos);
      int b = file.read();
      if (b >= 0) pos++;
      return b;
    }
  }

  @Override
  public int read(byte[] b) throws IOException {
    return read(b, 0, b.length);
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    if (len == 0) return 0;
    if (pos >= length) return -1;
    int n = (int) Math.min(len, length - pos);
    if (mem != null) {
      System.arraycopy(mem, (int) pos, b, off, n);
    } else {
      synchronized (this) {
        file.seek(pos);
        n = file.read(b, off, n);
        if (n < 0) return -1;
      }
    }
    pos += n;
    return n;
  }

  /** uWSGI's RequestBody.readLine(byte[]): bytes up to and including '\n' (or as many as fit); -1 at the end. */
  public int readLine(byte[] b) throws IOException {
    if (b.length == 0) return 0;
    if (pos >= length) return -1;
    int n = 0;
    while (n < b.length) {
      int c = read();
      if (c < 0) break;
      b[n++] = (byte) c;
      if (c == '\n') break;
    }
    return n;
  }

  @Override
  public int available() {
    return (int) Math.min(Integer.MAX_VALUE, Math.max(0, length - pos));
  }

  @Override
  public long skip(long n) {
    long k = Math.max(0, Math.min(n, length - pos));
    pos += k;
    return k;
  }

  /** uWSGI's RequestBody.seek(int): move to an absolute position (clamped to the body). */
  public void seek(long position) {
    pos = Math.max(0, Math.min(position, length));
  }

  @Override
  public boolean markSupported() {
    return true;
  }

  @Override
  public synchronized void mark(int readlimit) {
    mark = pos;
  }

  @Override
  public synchronized void reset() {
    pos = mark;
  }

  /** Release the temporary file (the bridge calls it after the response). */
  void release() {
    if (file != null) {
      try {
        file.close();
      } catch (IOException e) {
        // nothing to do: the file is unlinked already
      }
    }
  }
}
