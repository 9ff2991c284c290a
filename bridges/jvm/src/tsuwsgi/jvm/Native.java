package tsuwsgi.jvm;

import java.io.FileDescriptor;
import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.channels.Channel;

/**
 * The three things Java's public API cannot do with inherited descriptors, done through the
 * JDK's own internals (the bridge is started with `--add-opens java.base/java.io=ALL-UNNAMED
 * --add-opens java.base/sun.nio.ch=ALL-UNNAMED`; see docs/jvm.md "How the JVM gets its
 * descriptors"):
 *
 *   fd(n)         a FileDescriptor for an inherited fd other than 0 (the control channel, fd 4);
 *   listen(ch)    listen(2) on the pool socket, which the core binds but does not listen on
 *                 (System.inheritedChannel() adopts it, but a bound channel cannot be re-bound);
 *   shutdownRead  shutdown(fd, SHUT_RD) without NIO's own "input closed" flag, so data the core
 *                 already queued is still read (SocketChannel.shutdownInput() would drop it).
 *
 * sun.nio.ch.Net.listen/shutdown and FileDescriptor.fd have had these shapes since JDK 7.
 */
final class Native {
  private Native() {}

  static FileDescriptor fd(int n) throws ReflectiveOperationException {
    FileDescriptor fd = new FileDescriptor();
    Field f = FileDescriptor.class.getDeclaredField("fd");
    f.setAccessible(true);
    f.setInt(fd, n);
    return fd;
  }

  private static Method netMethod(String name, Class<?>... types) throws ReflectiveOperationException {
    Method m = Class.forName("sun.nio.ch.Net").getDeclaredMethod(name, types);
    m.setAccessible(true);
    return m;
  }

  /** The FileDescriptor behind an NIO channel (sun.nio.ch.SelChImpl.getFD()). */
  static FileDescriptor channelFd(Channel ch) throws ReflectiveOperationException {
    Method m = Class.forName("sun.nio.ch.SelChImpl").getMethod("getFD");
    m.setAccessible(true);
    return (FileDescriptor) m.invoke(ch);
  }

  private static void invoke(Method m, Object... args) throws IOException, ReflectiveOperationException {
    try {
      m.invoke(null, args);
    } catch (InvocationTargetException e) {
      Throwable t = e.getCause();
      if (t instanceof IOException) throw (IOException) t;
      throw e;
    }
  }

  static void listen(Channel ch, int backlog) throws IOException, ReflectiveOperationException {
    invoke(netMethod("listen", FileDescriptor.class, int.class), channelFd(ch), backlog);
  }

  private static volatile Method shutdown;
  private static int shutRd = 0;

  /** shutdown(SHUT_RD) on a connection; false when the internals are not reachable. */
  static boolean shutdownRead(Channel ch) {
    try {
      Method m = shutdown;
      if (m == null) {
        m = netMethod("shutdown", FileDescriptor.class, int.class);
        try {
          Field f = Class.forName("sun.nio.ch.Net").getDeclaredField("SHUT_RD");
          f.setAccessible(true);
          shutRd = ((Number) f.get(null)).intValue();
        } catch (ReflectiveOperationException e) {
          shutRd = 0; // Linux's value
        }
        shutdown = m;
      }
      invoke(m, channelFd(ch), shutRd);
      return true;
    } catch (IOException e) {
      return true; // already closed or shut down: the reader wakes anyway
    } catch (ReflectiveOperationException | RuntimeException e) {
      return false;
    }
  }
}
