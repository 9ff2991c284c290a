"""tsuwsgi's Python bridge: hosts WSGI apps (PEP 3333) and serves them over the uwsgi protocol.

The core starts one such process per pool slot as ``python3 bridge.py`` with:
    fd 3  the pool's unix stream socket (bound; we call listen() on it),
    fd 4  the control channel (newline-delimited JSON, both ways),
    TSUWSGI_BRIDGE_CONFIG  JSON describing the worker and the apps to load.
The full contract is docs/bridge-protocol.md; section numbers below (§2, §3.1...) refer to it.

Shape of the process (the default "simple" loop engine):
    control thread   reads the control channel from the start (stop, stack dump, EOF = exit).
    main thread      loads the apps, starts the workers, says "ready", then just waits.
    N worker threads each accepts a connection, serves it (one request, or many once the
                     core sent the *hello* packet), then accepts again.
The async loop engines (--async, --asyncio, --gevent: docs/loop-engines.md) live in loops.py,
loaded only when one is selected; they run their cores on the main thread instead.

Standard library only, Python 3.9+, so any python3 (system, pyenv, virtualenv) can run it.
"""
import errno
import importlib
import json
import os
import platform
import select
import signal
import socket
import stat
import sys
import threading
import time
import traceback
import types

BRIDGE_API = 1
UWSGI_FAILED_APP_CODE = 22  # exit status when an app cannot be loaded (§2)

# modifier1 99 / modifier2 0 is uWSGI's "request configuration data" packet; the core uses it
# as the hello that turns a connection persistent, and we answer with modifier2 1 (§3.1).
HELLO_MODIFIER1 = 99
# modifier1 30 is "WSGI with PATH_INFO stripped of SCRIPT_NAME" in uWSGI.
STRIP_SCRIPT_NAME_MODIFIER1 = 30

# Responses up to this size are framed and sent together with the headers in one sendall();
# bigger chunks go out as separate writes so we never copy a large body just to prepend headers.
COALESCE_LIMIT = 64 * 1024

# How the body of the response in progress is framed (§3.1 "self-delimiting").
MODE_NONE = 0      # no body may be sent (HEAD, 1xx, 204, 304): chunks are dropped
MODE_RAW = 1       # bytes as the app gives them (the connection end delimits, or the app framed it)
MODE_LENGTH = 2    # exactly Content-Length bytes: extra bytes dropped, missing bytes -> close
MODE_CHUNKED = 3   # we added Transfer-Encoding: chunked and encode every chunk

HERE = os.path.dirname(os.path.abspath(__file__))

# Linux's accept() returns a blocking socket even from a non-blocking listener; BSDs and
# macOS copy O_NONBLOCK over, and our connections must be blocking.
ACCEPTED_SOCKETS_INHERIT_NONBLOCKING = not sys.platform.startswith('linux')


def log(message):
    """One line in the server log (fd 2)."""
    stream = sys.stderr
    try:
        stream.write(message + '\n')
        stream.flush()
    except (OSError, ValueError):
        pass


def format_exception(exc):
    """The traceback as the app author wants it: starting at their code, not at the bridge's
    frame that called it (frames of the bridge *below* the app, e.g. start_response, stay)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return ''.join(traceback.format_exception(type(exc), exc, tb))


def log_exception(exc):
    """Print a traceback in one write, so tracebacks from parallel threads do not interleave."""
    log(format_exception(exc).rstrip('\n'))


def hard_exit(status):
    """Leave now: no interpreter shutdown, so threads started by the app cannot keep us alive."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(status)


class EngineError(Exception):
    """The selected loop engine cannot run in this interpreter (e.g. gevent is missing); the
    message is the one line the core shows."""


def wait_writable(sock):
    """Wait until a socket can take more bytes. Our sockets block, so only the gevent engine
    (whose sockets are non-blocking underneath) ever needs it; it replaces this function."""
    select.select((), (sock,), ())


class ClientDisconnected(OSError):
    """The peer went away in the middle of a request (raised by wsgi.input reads)."""


# ---------------------------------------------------------------------------------------------
# Receiving: the connection buffer, packet parsing and wsgi.input
# ---------------------------------------------------------------------------------------------

class Connection:
    """A data connection's socket and its receive buffer.

    The buffer is allocated once per worker thread and reused for every connection, so the
    hot path reads with recv_into() and never allocates a buffer. Unread bytes live in
    buf[pos:end]; packet parsing and wsgi.input both consume from there first.
    """
    __slots__ = ('sock', 'buf', 'view', 'pos', 'end')

    def __init__(self, size):
        self.sock = None
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.pos = 0
        self.end = 0

    def attach(self, sock):
        self.sock = sock
        self.pos = self.end = 0

    def compact(self):
        """Move the unread bytes to the front, making the rest of the buffer free."""
        pos, end = self.pos, self.end
        if pos:
            # Same-size slice assignment: a memmove, allowed while self.view exists.
            self.buf[0:end - pos] = self.buf[pos:end]
            self.pos, self.end = 0, end - pos

    def fill(self):
        """recv() more bytes after the unread ones. Returns how many (0 at EOF)."""
        if self.pos == self.end:
            self.pos = self.end = 0
        elif self.end == len(self.buf):
            self.compact()
        n = self.sock.recv_into(self.view[self.end:])
        self.end += n
        return n


def parse_vars(conn, start, size, env):
    """Decode a uwsgi vars block (u16 keylen, key, u16 vallen, value...) into env, as str.

    Latin-1 maps byte n to code point n, so we decode the whole block once and slice the
    resulting str at the byte offsets, reading the lengths from the raw bytes.
    """
    raw = bytes(conn.view[start:start + size])
    text = raw.decode('latin-1')
    pos = 0
    while pos < size:
        first = pos + 2
        pos = first + raw[pos] + (raw[pos + 1] << 8)
        key = text[first:pos]
        first = pos + 2
        pos = first + raw[pos] + (raw[pos + 1] << 8)
        env[key] = text[first:pos]
    if pos != size:
        raise ValueError('malformed uwsgi vars block')


def pack_vars(pairs):
    """Encode (str, str) pairs as a uwsgi vars block."""
    out = bytearray()
    for key, value in pairs:
        for item in (key.encode('latin-1'), value.encode('latin-1')):
            out += len(item).to_bytes(2, 'little')
            out += item
    return bytes(out)


class Input:
    """wsgi.input: the request body, read from the socket on demand, bounded by CONTENT_LENGTH.

    Bytes already in the connection buffer are served first; big reads go straight from the
    socket into their destination. At the end of the body every read returns b''.
    """
    __slots__ = ('conn', 'remaining')

    def __init__(self, conn, length):
        self.conn = conn
        self.remaining = length

    def _refill(self):
        """Get more body bytes into the (empty) connection buffer."""
        try:
            n = self.conn.fill()
        except OSError as exc:
            raise ClientDisconnected('error reading the request body: %s' % (exc,)) from exc
        if n == 0:
            raise ClientDisconnected('client disconnected while sending the request body '
                                     '(%d bytes missing)' % self.remaining)

    def read(self, size=-1):
        remaining = self.remaining
        if size is None or size < 0 or size > remaining:
            size = remaining
        if size == 0:
            return b''
        conn = self.conn
        pos = conn.pos
        available = conn.end - pos
        if available >= size:
            conn.pos = pos + size
            self.remaining = remaining - size
            return bytes(conn.view[pos:pos + size])
        # Not all buffered: copy what is, then receive the rest directly into the result.
        out = bytearray(size)
        dest = memoryview(out)
        dest[:available] = conn.view[pos:conn.end]
        conn.pos = conn.end = 0
        got = available
        sock = conn.sock
        try:
            while got < size:
                n = sock.recv_into(dest[got:])
                if n == 0:
                    break
                got += n
        except OSError as exc:
            self.remaining = remaining - got
            raise ClientDisconnected('error reading the request body: %s' % (exc,)) from exc
        finally:
            dest.release()
        self.remaining = remaining - got
        if got < size:
            raise ClientDisconnected('client disconnected while sending the request body '
                                     '(%d bytes missing)' % self.remaining)
        return bytes(out)

    def readline(self, size=-1):
        limit = self.remaining
        if size is not None and 0 <= size < limit:
            limit = size
        if limit == 0:
            return b''
        conn = self.conn
        parts = []
        while True:
            if conn.pos == conn.end:
                self._refill()
            pos = conn.pos
            stop = min(conn.end, pos + limit)
            newline = conn.buf.find(b'\n', pos, stop)
            if newline >= 0:
                stop = newline + 1
            parts.append(bytes(conn.view[pos:stop]))
            conn.pos = stop
            taken = stop - pos
            self.remaining -= taken
            limit -= taken
            if newline >= 0 or limit == 0:
                break
        return parts[0] if len(parts) == 1 else b''.join(parts)

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def drain(self):
        """Consume the unread rest of the body, so the next packet starts where we read next."""
        conn = self.conn
        remaining = self.remaining
        taken = min(conn.end - conn.pos, remaining)
        conn.pos += taken
        remaining -= taken
        if remaining:
            # The buffer is exhausted: receive into it, never past the body (the next packet
            # may follow right after it).
            conn.pos = conn.end = 0
            view, size = conn.view, len(conn.buf)
            recv_into = conn.sock.recv_into
            while remaining:
                n = recv_into(view, min(remaining, size))
                if n == 0:
                    self.remaining = remaining
                    raise ClientDisconnected('client disconnected while sending the request body')
                remaining -= n
        self.remaining = 0


# ---------------------------------------------------------------------------------------------
# Sending: wsgi.file_wrapper and the response state machine
# ---------------------------------------------------------------------------------------------

class FileWrapper:
    """wsgi.file_wrapper. The server sends real files with sendfile(); as a plain iterable
    (for middleware that wraps the response) it reads blksize-byte blocks, as PEP 3333 says."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, 'close'):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


class Response:
    """One response: start_response() validation, framing (§3.1) and writes to the socket.

    Headers are held back until the first non-empty body chunk (PEP 3333), then sent in the
    same write as that chunk. `disconnected` records that a write failed, so the error path
    can tell a vanished client from an application bug.
    """
    __slots__ = ('sock', 'persistent', 'is_head', 'protocol', 'status', 'code', 'head',
                 'content_length', 'app_framed', 'headers_sent', 'mode', 'remaining',
                 'disconnected', 'outbox', 'defer')

    def __init__(self, sock, persistent, is_head, protocol, outbox):
        self.sock = sock
        # Responses held back while the core has already sent the next request (pipelining):
        # they go out together in one write (see Worker.flush_outbox). `defer` is set only
        # for responses whose whole body is known, never for streamed ones.
        self.outbox = outbox
        self.defer = False
        self.persistent = persistent
        self.is_head = is_head
        self.protocol = protocol
        self.status = None
        self.headers_sent = False
        self.mode = MODE_NONE
        self.disconnected = False

    # -- start_response / write: the callables the app gets -----------------------------------

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.headers_sent:
                    # Too late to change the response: PEP 3333 says re-raise the app's error.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError('start_response() called again without exc_info')

        if not isinstance(status, str):
            raise TypeError('status must be a str, not %s' % type(status).__name__)
        code = status[:3]
        if len(code) != 3 or not code.isdigit() or not code.isascii() or (
                len(status) > 3 and status[3] != ' '):
            raise ValueError('invalid status %r (expected e.g. "200 OK")' % (status,))
        if not isinstance(headers, (list, tuple)):
            raise TypeError('headers must be a list, not %s' % type(headers).__name__)

        content_length = None
        app_framed = False
        for header in headers:
            if not isinstance(header, tuple) or len(header) != 2:
                raise TypeError('each header must be a (name, value) tuple, got %r' % (header,))
            name, value = header
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError('header name and value must be str, got %r' % (header,))
            # Cheap length test first: most headers are neither of these.
            size = len(name)
            if size == 14 and name.lower() == 'content-length':
                content_length = value
            elif size == 17 and name.lower() == 'transfer-encoding':
                app_framed = True

        text = '\r\n'.join([self.protocol + ' ' + status, *map(': '.join, headers)])
        # Each header adds exactly one CRLF; any other CR or LF would split the response.
        if text.count('\n') != len(headers) or text.count('\r') != len(headers):
            raise ValueError('CR or LF in the status or in a header')
        head = text.encode('latin-1')  # UnicodeEncodeError is a ValueError

        if content_length is not None:
            digits = content_length.strip()
            if not (digits.isdigit() and digits.isascii()):
                raise ValueError('invalid Content-Length %r' % (content_length,))
            content_length = int(digits)

        self.status = status
        self.code = int(code)
        self.head = head
        self.content_length = content_length
        self.app_framed = app_framed
        return self.write

    def write(self, data):
        """Send one body chunk (the PEP 3333 write() callable; also used for iterables)."""
        if not isinstance(data, bytes):
            raise TypeError('response body chunks must be bytes, not %s (encode text before '
                            'returning it)' % type(data).__name__)
        if self.headers_sent:
            if data and self.mode:
                self._send_body(data)
        elif not data:
            # An empty chunk sends nothing, so it may come before start_response(): uWSGI's
            # async idiom yields uwsgi.async_sleep()'s b'' wherever the app waits.
            pass
        elif self.status is None:
            raise AssertionError('response body produced before start_response() was called')
        else:
            self.commit(data, None)

    # -- what the worker calls -----------------------------------------------------------------

    def commit(self, first, known_length):
        """Send status line and headers, plus the framing headers and the first body bytes.

        known_length: the exact body size when the server knows it (a list response, a
        file), which lets us add Content-Length instead of chunking.
        """
        if self.status is None:
            raise RuntimeError('the application did not call start_response()')
        code = self.code
        extra = b''
        if code < 200 or code == 204 or code == 304:
            mode = MODE_NONE  # never a body, so no framing header either
        elif self.content_length is not None:
            mode = MODE_LENGTH
            self.remaining = self.content_length
        elif self.app_framed:
            mode = MODE_RAW  # the app set Transfer-Encoding itself: its framing, not ours
        elif known_length is not None:
            extra = b'\r\nContent-Length: %d' % known_length
            mode = MODE_LENGTH
            self.remaining = known_length
        elif self.is_head:
            mode = MODE_NONE  # unknown length, and no body to frame anyway
        elif self.persistent:
            extra = b'\r\nTransfer-Encoding: chunked'
            mode = MODE_CHUNKED
        else:
            mode = MODE_RAW  # plain uwsgi: closing the connection ends the body
        if self.is_head:
            mode = MODE_NONE  # HEAD gets the headers a GET would get, and no body bytes
        self.mode = mode
        self.headers_sent = True
        head = self.head + extra + b'\r\n\r\n'
        if not first or mode == MODE_NONE:
            self._sendall(head)
        elif len(first) > COALESCE_LIMIT:
            self._sendall(head)
            self._send_body(first)
        elif mode == MODE_CHUNKED:
            self._sendall(b'%b%x\r\n%b\r\n' % (head, len(first), first))
        elif mode == MODE_LENGTH:
            self._sendall(head + self._clip(first))
        else:
            self._sendall(head + first)

    def send_file(self, wrapper):
        """Send a wsgi.file_wrapper over a regular file with sendfile(). Returns False when the
        object is not a real file (the caller then iterates it like any other iterable)."""
        filelike = wrapper.filelike
        try:
            fd = filelike.fileno()
            info = os.fstat(fd)
        except (AttributeError, OSError, ValueError):
            return False
        if not stat.S_ISREG(info.st_mode) or self.headers_sent:
            return False
        try:
            offset = filelike.tell()  # the logical position, even for buffered file objects
        except (AttributeError, OSError, ValueError):
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        size = max(0, info.st_size - offset)
        self.commit(b'', size)
        mode = self.mode
        if mode == MODE_NONE:
            return True
        if mode == MODE_LENGTH:
            count = min(size, self.remaining)
            self.remaining -= count
        else:
            count = size
        self._sendfile(fd, offset, count, wrapper.blksize)
        return True

    def finish(self):
        """End the response once the body is complete. Returns True when the connection can
        carry another request (the response was correctly delimited)."""
        if not self.headers_sent:
            # The app produced no body bytes at all: an empty body of known length.
            self.commit(b'', 0)
        mode = self.mode
        if mode == MODE_CHUNKED:
            self._sendall(b'0\r\n\r\n')
        elif mode == MODE_LENGTH and self.remaining > 0:
            log('response shorter than its Content-Length (%d bytes missing): closing the '
                'connection' % self.remaining)
            return False
        return True

    def send_error(self, body):
        """Replace the response not yet sent with a 500 (§3.3)."""
        body_bytes = body.encode('utf-8', 'replace')
        head = ('%s 500 Internal Server Error\r\nContent-Type: text/plain\r\n'
                'Content-Length: %d\r\n\r\n' % (self.protocol, len(body_bytes))).encode('latin-1')
        self.headers_sent = True
        self._sendall(head if self.is_head else head + body_bytes)

    # -- low level -------------------------------------------------------------------------------

    def _clip(self, data):
        """Keep at most the bytes still owed under Content-Length."""
        remaining = self.remaining
        if len(data) > remaining:
            data = memoryview(data)[:remaining]
        self.remaining = remaining - len(data)
        return data

    def _send_body(self, data):
        mode = self.mode
        if mode == MODE_CHUNKED:
            if len(data) > COALESCE_LIMIT:
                self._sendall(b'%x\r\n' % len(data))
                self._sendall(data)
                self._sendall(b'\r\n')
            else:
                self._sendall(b'%x\r\n%b\r\n' % (len(data), data))
        elif mode == MODE_LENGTH:
            if self.remaining:
                self._sendall(self._clip(data))
        elif mode == MODE_RAW:
            self._sendall(data)

    def _sendall(self, data):
        outbox = self.outbox
        if self.defer and outbox is not None:
            outbox.append(data)
            return
        try:
            if outbox:
                # Earlier held-back responses go first, in the same write.
                outbox.append(data)
                data = b''.join(outbox)
                outbox.clear()
            self.sock.sendall(data)
        except OSError:
            self.disconnected = True
            raise

    def _flush_outbox(self):
        if self.outbox:
            self._sendall(b'')

    def _sendfile(self, fd, offset, count, blksize):
        self._flush_outbox()
        out = self.sock.fileno()
        sent = 0
        while sent < count:
            try:
                n = os.sendfile(out, fd, offset + sent, count - sent)
            except BlockingIOError:
                wait_writable(self.sock)
                continue
            except ConnectionError:
                self.disconnected = True
                raise
            except OSError as exc:
                # No sendfile() for this pair of descriptors: copy through userspace.
                if sent == 0 and exc.errno in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP,
                                               errno.EOPNOTSUPP):
                    self._copy_file(fd, offset, count, blksize)
                    return
                raise
            if n == 0:
                break  # the file shrank under us
            sent += n
        if sent < count and self.mode == MODE_LENGTH:
            self.remaining += count - sent  # finish() will see the missing bytes and close

    def _copy_file(self, fd, offset, count, blksize):
        end = offset + count
        blksize = max(int(blksize or 8192), 65536)
        while offset < end:
            data = os.pread(fd, min(blksize, end - offset), offset)
            if not data:
                if self.mode == MODE_LENGTH:
                    self.remaining += end - offset
                return
            self._sendall(data)
            offset += len(data)


# ---------------------------------------------------------------------------------------------
# Worker threads
# ---------------------------------------------------------------------------------------------

class Worker(threading.Thread):
    """One accepting thread (one uWSGI "core"): accept a connection, serve it, repeat.

    The gevent engine runs the same code in greenlets, with gevent's sockets and select."""

    # How accept() waits for the listener or the wake-up pipe (gevent: gevent.select.select).
    _select = staticmethod(select.select)

    def __init__(self, bridge, index):
        super().__init__(name='tsuwsgi-core-%d' % index, daemon=True)
        self.bridge = bridge
        self.index = index
        self.requests = 0
        # The descriptor the last uwsgi.wait_fd_read/wait_fd_write found ready (-1: timed out).
        self.ready_fd = -1
        self.conn = Connection(bridge.recv_buffer_size)
        # Responses held back for one write while pipelined requests are pending.
        self.outbox = []
        self.request_body = None
        # The socket this thread is blocked on while waiting for a packet (between requests),
        # or None. Guarded by bridge.state_lock; graceful stop shuts these down to wake us.
        self.idle_sock = None
        # Every request's environ starts as a copy of this.
        self.base_environ = dict(bridge.base_environ)
        if bridge.cores > 1:
            self.base_environ['uwsgi.core'] = index

    def run(self):
        bridge = self.bridge
        while not bridge.stopping:
            sock = self.accept()
            if sock is None:
                break
            try:
                self.serve(sock)
            except Exception as exc:  # a bug in the bridge: keep the thread alive
                log_exception(exc)
            finally:
                self.outbox.clear()
                self.request_body = None
                self.conn.sock = None
                sock.close()

    def accept(self):
        """Wait for a connection; None once the bridge is stopping.

        The listening socket is non-blocking: another thread (or another bridge process of
        the pool) may take a connection first, and a thread must never sleep inside accept()
        where a graceful stop could not wake it. So: try accept(), and when nothing is
        pending, select() on the listening socket *and* the wake-up pipe.
        """
        bridge = self.bridge
        listener = bridge.listener
        waitable = [listener, bridge.wake_read]
        while not bridge.stopping:
            try:
                sock = listener.accept()[0]
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                self._select(waitable, (), ())
                continue
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log('accept(): %s' % (exc,))
                    bridge.wake_event.wait(0.1)
                    continue
                raise
            if bridge.stopping:
                sock.close()  # too late: the core stopped sending us work
                return None
            if ACCEPTED_SOCKETS_INHERIT_NONBLOCKING or socket.getdefaulttimeout() is not None:
                sock.setblocking(True)  # also undoes a socket.setdefaulttimeout() by the app
            return sock
        return None

    def next_request_buffered(self):
        """True when the current request's body is consumed and the next request's header
        and vars are already in the buffer: the core pipelined it, so this response can be
        held back and sent together with the next one(s)."""
        if self.request_body is not None and self.request_body.remaining:
            return False
        conn = self.conn
        pos = conn.pos
        if conn.end - pos < 4:
            return False
        buf = conn.buf
        return conn.end - pos >= 4 + (buf[pos + 1] | buf[pos + 2] << 8)

    def flush_outbox(self):
        """Send held-back responses. Returns False if the connection broke."""
        if not self.outbox:
            return True
        data = b''.join(self.outbox)
        self.outbox.clear()
        try:
            self.conn.sock.sendall(data)
        except OSError:
            return False
        return True

    def wait_for_packet(self):
        """Block until bytes arrive on an idle connection. False at EOF or when stopping."""
        if not self.flush_outbox():
            return False
        bridge = self.bridge
        conn = self.conn
        with bridge.state_lock:
            stopping = bridge.stopping
            if not stopping:
                self.idle_sock = conn.sock
        if stopping:
            # Stopping: serve what the core already sent (a pipelined request may be waiting
            # in the socket), but do not wait for more.
            return self.fill_nonblocking()
        try:
            return conn.fill() > 0
        except OSError:
            return False
        finally:
            with bridge.state_lock:
                self.idle_sock = None

    def fill_nonblocking(self):
        """Read whatever is already queued on the connection; False when nothing is."""
        sock = self.conn.sock
        try:
            sock.setblocking(False)
            try:
                return self.conn.fill() > 0
            finally:
                sock.setblocking(True)
        except OSError:  # BlockingIOError included: nothing queued
            return False

    def read_packet(self):
        """Buffer the next packet's header and vars. Returns (modifier1, start, size,
        modifier2) where the vars are conn.buf[start:start+size], or None at EOF."""
        conn = self.conn
        if conn.pos == conn.end and not self.wait_for_packet():
            return None
        try:
            while conn.end - conn.pos < 4:
                if not conn.fill():
                    return None
            buf = conn.buf
            size = buf[conn.pos + 1] | buf[conn.pos + 2] << 8
            if conn.pos + 4 + size > len(buf):
                conn.compact()  # the vars block must be contiguous in the buffer
            while conn.end - conn.pos < 4 + size:
                if not conn.fill():
                    return None
        except OSError:
            return None
        pos = conn.pos
        conn.pos = pos + 4 + size
        return buf[pos], pos + 4, size, buf[pos + 3]

    def serve(self, sock):
        """Serve one connection: a single request, or many after a hello (§3.1)."""
        self.conn.attach(sock)
        packet = self.read_packet()
        if packet is None:
            return
        persistent = False
        if packet[0] == HELLO_MODIFIER1 and packet[3] == 0:
            if not self.answer_hello(sock):
                return
            persistent = True
            packet = self.read_packet()
        while packet is not None:
            if packet[0] == HELLO_MODIFIER1 and packet[3] == 0:
                # A repeated hello: answer it again (after any held-back responses).
                if not self.flush_outbox() or not self.answer_hello(sock):
                    return
            elif not self.handle_packet(packet, persistent) or not persistent:
                self.flush_outbox()
                return
            if self.outbox and not self.next_request_buffered():
                if not self.flush_outbox():
                    return
            packet = self.read_packet()

    def answer_hello(self, sock):
        bridge = self.bridge
        payload = pack_vars((('pid', str(bridge.pid)), ('worker_id', str(bridge.worker_id)),
                             ('core', str(self.index)), ('bridge_api', str(BRIDGE_API))))
        try:
            sock.sendall(bytes((HELLO_MODIFIER1,)) + len(payload).to_bytes(2, 'little')
                         + b'\x01' + payload)
        except OSError:
            return False
        return True

    def handle_packet(self, packet, persistent):
        """Turn a request packet into an environ, run the app. True if the connection is
        still usable for the next packet."""
        modifier1, start, size, _ = packet
        environ = self.base_environ.copy()
        try:
            parse_vars(self.conn, start, size, environ)
            length = environ.get('CONTENT_LENGTH')
            length = int(length) if length else 0
            if length < 0:
                raise ValueError('negative CONTENT_LENGTH')
        except (ValueError, IndexError) as exc:
            log('invalid uwsgi packet (%s): closing the connection' % (exc,))
            return False

        # PEP 3333: the body's length and type are CONTENT_LENGTH/CONTENT_TYPE only.
        if 'HTTP_CONTENT_LENGTH' in environ:
            del environ['HTTP_CONTENT_LENGTH']
        if 'HTTP_CONTENT_TYPE' in environ:
            del environ['HTTP_CONTENT_TYPE']
        environ['wsgi.url_scheme'] = url_scheme(environ)
        body = Input(self.conn, length)
        self.request_body = body
        environ['wsgi.input'] = body
        if modifier1 == STRIP_SCRIPT_NAME_MODIFIER1:
            strip_script_name(environ)
        if 'UWSGI_CHDIR' in environ:
            apply_chdir(environ)

        keep = self.run_app(self.bridge.select_app(environ), environ, persistent)
        self.requests += 1
        if body.remaining:
            # The app left part of the body unread: consume it, or the next packet would be
            # read from the middle of this body (and closing with unread data resets the peer).
            try:
                body.drain()
            except OSError:
                return False
        return keep

    def run_app(self, app, environ, persistent):
        """Call the app and send what it returns. True if the response was delimited."""
        response = Response(self.conn.sock, persistent, environ.get('REQUEST_METHOD') == 'HEAD',
                            environ.get('SERVER_PROTOCOL') or 'HTTP/1.0', self.outbox)
        result = None
        try:
            result = app(environ, response.start_response)
            keep = self.send_result(response, result)
        except BaseException as exc:  # SystemExit from an app must not kill the thread either
            keep = self.app_failed(response, environ, exc)
        if result is not None and type(result) not in (list, tuple, bytes):
            close = getattr(result, 'close', None)
            if close is not None:
                try:
                    close()  # PEP 3333: always, even after errors or for HEAD
                except BaseException as exc:
                    log_exception(exc)
        return keep

    def send_result(self, response, result):
        kind = type(result)
        if kind is list or kind is tuple:
            if not response.headers_sent:
                if len(result) == 1 and type(result[0]) is bytes:
                    # The hello-world fast path: headers + body + Content-Length, one write
                    # (held back and batched with the next responses when the core pipelines).
                    response.defer = self.next_request_buffered()
                    response.commit(result[0], len(result[0]))
                    return response.finish()
                if all(type(chunk) is bytes for chunk in result):
                    total = sum(map(len, result))
                    if total <= COALESCE_LIMIT:
                        response.defer = self.next_request_buffered()
                        response.commit(b''.join(result), total)
                    else:
                        response.commit(b'', total)
                        for chunk in result:
                            response.write(chunk)
                    return response.finish()
        elif kind is bytes:
            # Not an iterable of bytes, but uWSGI accepts it (as one chunk) unless wsgi-strict.
            if not response.headers_sent:
                response.commit(result, len(result))
            else:
                response.write(result)
            return response.finish()
        elif kind is FileWrapper and response.send_file(result):
            return response.finish()
        # The general case: stream whatever the iterable yields, chunk by chunk.
        write = response.write
        for chunk in result:
            write(chunk)
        return response.finish()

    def app_failed(self, response, environ, exc):
        """The app (or sending its response) raised. Returns True if the connection is still
        usable (we could send a complete 500)."""
        if response.disconnected or isinstance(exc, ClientDisconnected):
            log_disconnect(environ, exc)
            return False
        log_exception(exc)
        if response.headers_sent:
            return False  # the response is truncated; closing tells the core so (§3.3)
        if self.bridge.catch_exceptions:
            body = format_exception(exc)
        else:
            body = 'Internal Server Error'
        try:
            response.send_error(body)
        except OSError as send_exc:
            log_disconnect(environ, send_exc)
            return False
        return True


def url_scheme(env):
    """UWSGI_SCHEME if the core set it, else HTTPS=on/1..., else http (uWSGI's rule)."""
    scheme = env.get('UWSGI_SCHEME')
    if scheme:
        return scheme
    https = env.get('HTTPS')
    if https and (https.lower() == 'on' or https[0] == '1'):
        return 'https'
    return 'http'


def apply_chdir(environ):
    """Routing's chdir:DIR (UWSGI_CHDIR): uWSGI chdir()s the worker before the app runs, and
    the worker stays there for later requests; the core checked the directory already."""
    directory = environ.get('UWSGI_CHDIR')
    if directory:
        try:
            os.chdir(directory)
        except OSError as exc:
            log('chdir(%s) asked by the routing rule failed: %s' % (directory, exc.strerror or exc))


def strip_script_name(environ):
    script_name = environ.get('SCRIPT_NAME') or ''
    path_info = environ.get('PATH_INFO') or ''
    if script_name and path_info.startswith(script_name):
        environ['PATH_INFO'] = path_info[len(script_name):]


def log_disconnect(environ, exc):
    """A client going away is normal life for a server: one line, no traceback."""
    if isinstance(exc, ClientDisconnected):
        reason = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        reason = 'client disconnected: ' + exc.strerror
    else:
        reason = 'client disconnected: %s' % (exc,)
    log('%s, during %s %s (%s)' % (
        reason, environ.get('REQUEST_METHOD', '-'), environ.get('REQUEST_URI')
        or environ.get('PATH_INFO', '-'), environ.get('REMOTE_ADDR', '-')))


# ---------------------------------------------------------------------------------------------
# App loading (§2)
# ---------------------------------------------------------------------------------------------

class AppLoadError(Exception):
    """An app could not be loaded; the message is the one line the core will show."""


def module_name_for_file(path):
    """uWSGI's name for a --wsgi-file module: /x/app.py -> uwsgi_file__x_app."""
    name = path
    if name.endswith('.py'):
        name = name[:-3]
    return 'uwsgi_file_' + name.replace('.', '_').replace('/', '_')


def exec_file_as_module(path):
    """Run a source file as a fresh module registered in sys.modules (uWSGI's file loader)."""
    name = module_name_for_file(path)
    with open(path, 'rb') as source_file:
        source = source_file.read()
    code = compile(source, path, 'exec', dont_inherit=True)
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def find_attribute(module, spec):
    """'app' / 'create()' / 'obj.app' -> (object, whether it is a factory to call)."""
    is_factory = spec.endswith('()')
    obj = module
    for part in (spec[:-2] if is_factory else spec).split('.'):
        obj = getattr(obj, part)
    return obj, is_factory


def load_app(load, default_callable, uwsgi_module):
    """Load one app; returns [(mountpoint or None, callable)].

    A mountpoint of None means "the one the core configured"; a dict found in
    uwsgi.applications (or as the callable) mounts several apps under its own keys.
    """
    kind = load.get('kind')
    target = load.get('target') or ''
    callable_name = load.get('callable') or default_callable
    if kind == 'module' and target.endswith(('.py', '.wsgi')) and os.path.isfile(target):
        kind = 'wsgi-file'  # uWSGI accepts a file given to --module too
    if kind == 'wsgi-file':
        where = 'file %s' % target
        directory = os.path.dirname(os.path.abspath(target))
        if directory not in sys.path:
            # So the app can import its neighbours: after the --pythonpath entries (they
            # come first, as the user asked), before the working directory ('').
            where_cwd = sys.path.index('') if '' in sys.path else 0
            sys.path.insert(where_cwd, directory)
        try:
            module = exec_file_as_module(target)
        except BaseException as exc:
            raise AppLoadError('unable to load %s: %s' % (where, one_line(exc))) from exc
    elif kind == 'module':
        module_name, colon, attribute = target.partition(':')
        if colon:
            callable_name = attribute
        where = 'module %s' % module_name
        try:
            module = importlib.import_module(module_name)
        except BaseException as exc:
            raise AppLoadError('unable to import %s: %s' % (where, one_line(exc))) from exc
    else:
        raise AppLoadError('unknown app kind %r for %r (the python plugin loads "wsgi-file" '
                           'and "module")' % (kind, target))

    declared = uwsgi_module.applications
    if isinstance(declared, dict):
        uwsgi_module.applications = None  # consumed: do not mount it again for the next app
        return mount_application_dict(declared, module, where)

    try:
        app, is_factory = find_attribute(module, callable_name)
    except AttributeError:
        if isinstance(getattr(module, 'applications', None), dict):
            return mount_application_dict(module.applications, module, where)
        raise AppLoadError('unable to find "%s" callable in %s' % (callable_name, where))
    if is_factory:
        try:
            app = app()
        except BaseException as exc:
            raise AppLoadError('unable to call "%s" in %s: %s'
                               % (callable_name, where, one_line(exc))) from exc
    if isinstance(app, dict):
        return mount_application_dict(app, module, where)
    if not callable(app):
        raise AppLoadError('"%s" in %s is not callable (it is a %s)'
                           % (callable_name, where, type(app).__name__))
    return [(None, app)]


def mount_application_dict(applications, module, where):
    """uwsgi.applications = {'': app, '/admin': 'admin_app'}: values are callables or names of
    callables in the module."""
    mounted = []
    for mountpoint, app in applications.items():
        if isinstance(app, str):
            name = app
            app = getattr(module, name, None)
            if app is None:
                raise AppLoadError('unable to find "%s" callable in %s (uwsgi.applications)'
                                   % (name, where))
        if not callable(app):
            raise AppLoadError('uwsgi.applications[%r] in %s is not callable' % (mountpoint, where))
        mounted.append((str(mountpoint), app))
    return mounted


def one_line(exc):
    text = '%s: %s' % (type(exc).__name__, exc)
    return ' '.join(text.split())


# ---------------------------------------------------------------------------------------------
# The bridge process
# ---------------------------------------------------------------------------------------------

class Bridge:
    def __init__(self, config):
        plugin = config.get('plugin') or {}
        self.config = config
        self.pid = os.getpid()
        self.worker_id = int(config.get('workerId') or 1)
        self.threads = max(1, int(config.get('threads') or 1))
        # The loop engine (docs/loop-engines.md): which one, and how many requests ("cores")
        # this process serves at once — its threads, or the async cores.
        loop = config.get('loop') or {}
        self.loop_name = loop.get('name') or 'simple'
        self.cores = max(1, int(loop.get('cores') or self.threads))
        self.suspend_engine = loop.get('suspend') or None
        self.loop_settings = loop.get('settings') or {}
        self.processes = max(1, int(config.get('processes') or 1))
        self.backlog = int(config.get('listenBacklog') or 100)
        self.catch_exceptions = bool(plugin.get('catchExceptions'))
        buffer_size = int(config.get('bufferSize') or 4096)
        # Room for the largest possible vars block (u16 size) plus some body behind it.
        self.recv_buffer_size = 2 * max(buffer_size, 65535) + 8
        self.control_fd = int(os.environ.get('TSUWSGI_CONTROL_FD') or 4)
        self.listen_fd = int(os.environ.get('TSUWSGI_LISTEN_FD') or 3)
        self.control_lock = threading.Lock()
        self.state_lock = threading.Lock()
        self.stopping = False
        self.engine = None  # set by main() (create_engine), before the apps load
        self.wake_event = threading.Event()
        self.wake_read, self.wake_write = os.pipe()
        self.listener = None
        self.workers = []
        self.apps = []             # [(id, mountpoint, callable)]
        self.apps_by_mountpoint = {}
        self.default_app = None
        self.base_environ = {
            'wsgi.version': (1, 0),
            'wsgi.errors': sys.stderr,
            'wsgi.multithread': self.threads > 1,
            'wsgi.multiprocess': self.processes > 1,
            'wsgi.run_once': False,
            'wsgi.file_wrapper': FileWrapper,
            # Our wsgi.input returns b'' at the end of the body (werkzeug's extension key).
            'wsgi.input_terminated': True,
            'uwsgi.version': str(config.get('version') or '').encode('utf-8'),
            'uwsgi.node': str(config.get('hostname') or socket.gethostname()).encode('utf-8'),
        }

    # -- control channel (§4) ------------------------------------------------------------------

    def send_event(self, message):
        data = (json.dumps(message) + '\n').encode('utf-8')
        with self.control_lock:
            view = memoryview(data)
            while view:
                try:
                    written = os.write(self.control_fd, view)
                except InterruptedError:
                    continue
                except OSError:
                    return False  # the core is gone; EOF on the read side will exit us
                view = view[written:]
        return True

    def control_loop(self):
        """Read commands until EOF, which means the core died: exit at once (§1).

        Runs in its own thread from the very start, so a core that dies (or asks for a stack
        dump) while an app takes long to import is still obeyed."""
        pending = b''
        while True:
            try:
                data = os.read(self.control_fd, 65536)
            except InterruptedError:
                continue
            except OSError:
                data = b''
            if not data:
                hard_exit(0)
            pending += data
            while b'\n' in pending:
                line, pending = pending.split(b'\n', 1)
                if line.strip():
                    self.handle_command(line)

    def handle_command(self, line):
        try:
            command = json.loads(line)
        except ValueError:
            log('python bridge: invalid control message %r' % (line[:200],))
            return
        if not isinstance(command, dict):
            return
        name = command.get('cmd')
        if name == 'stop':
            if command.get('graceful'):
                self.start_graceful_stop()
            else:
                hard_exit(0)
        elif name == 'stack':
            self.dump_stacks()
        else:
            log('python bridge: unknown control command %r' % (name,))

    def start_graceful_stop(self):
        if self.engine is None:
            hard_exit(0)  # nothing is served yet
        self.engine.request_stop()

    def stop_workers(self):
        """Stop accepting, close idle persistent connections (the threads and gevent engines)."""
        with self.state_lock:
            self.stopping = True
            idle = [worker.idle_sock for worker in self.workers if worker.idle_sock is not None]
            for sock in idle:
                try:
                    # Wakes the thread blocked in recv(). Only the read side: a request that
                    # is already queued is still read (Linux delivers queued data before the
                    # EOF) and can still be answered.
                    sock.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
        self.wake_event.set()
        os.write(self.wake_write, b'x')  # never read: every select() on it returns at once

    def dump_stacks(self):
        """Every thread's Python stack on fd 2 (harakiri asks before killing us), plus the
        suspended requests of an async engine's cores."""
        names = {thread.ident: thread.name for thread in threading.enumerate()}
        lines = ['*** python bridge stack dump (pid %d, worker %d) ***'
                 % (self.pid, self.worker_id)]
        for ident, frame in sys._current_frames().items():
            lines.append('thread %s (%s):' % (names.get(ident, '?'), ident))
            lines.extend(line.rstrip('\n') for line in traceback.format_stack(frame))
        try:
            for title, frame in self.engine.core_frames():
                lines.append(title)
                lines.extend(line.rstrip('\n') for line in traceback.format_stack(frame))
        except Exception as exc:  # a diagnostic must never fail the harakiri that asked for it
            lines.append('(async cores not listed: %s)' % (exc,))
        lines.append('*** end of the stack dump ***')
        log('\n'.join(lines))

    # -- app registry (§3.2) ---------------------------------------------------------------------

    def add_app(self, app_id, mountpoint, app):
        if mountpoint in self.apps_by_mountpoint:
            log('python bridge: mountpoint %r is already taken, app ignored' % (mountpoint,))
            return
        self.apps.append((app_id, mountpoint, app))
        self.apps_by_mountpoint[mountpoint] = app
        # The default app is the one mounted at '' (uWSGI's), else the first one.
        self.default_app = self.apps_by_mountpoint.get('', self.apps[0][2])
        if len(self.apps) == 1:
            self.select_app = lambda env, app=app: app  # one app: no lookup at all
        else:
            self.select_app = self.lookup_app

    def lookup_app(self, env):
        """UWSGI_APPID, else SCRIPT_NAME, else the default app (uWSGI's rule)."""
        apps = self.apps_by_mountpoint
        app_id = env.get('UWSGI_APPID')
        if app_id is not None and app_id in apps:
            return apps[app_id]
        script_name = env.get('SCRIPT_NAME')
        if script_name is not None and script_name in apps:
            return apps[script_name]
        return self.default_app

    # -- counters for the uwsgi module -----------------------------------------------------------

    def request_id(self):
        core = self.engine.current_core()
        return core.requests if core is not None else 0

    def total_requests(self):
        return sum(core.requests for core in self.engine.all_cores())

    # -- start-up --------------------------------------------------------------------------------

    def load(self, uwsgi_module):
        """§2.1: settings, imports, every app. Raises AppLoadError (with .app_id set)."""
        plugin = self.config.get('plugin') or {}
        default_callable = plugin.get('callable') or 'application'
        current_id = 0
        try:
            for module_name in plugin.get('imports') or ():
                try:
                    if module_name.endswith('.py') and os.path.isfile(module_name):
                        exec_file_as_module(os.path.abspath(module_name))
                    else:
                        __import__(module_name)
                except BaseException as exc:
                    raise AppLoadError('unable to import %s: %s'
                                       % (module_name, one_line(exc))) from exc
            next_id = 0
            for spec in self.config.get('apps') or ():
                current_id = spec.get('id', next_id)
                for mountpoint, app in load_app(spec.get('load') or {}, default_callable,
                                                uwsgi_module):
                    if mountpoint is None:
                        mountpoint, app_id = spec.get('mountpoint') or '', current_id
                    else:
                        app_id = max(current_id, next_id)
                    self.add_app(app_id, mountpoint, app)
                    next_id = max(next_id, app_id + 1)
        except AppLoadError as exc:
            exc.app_id = current_id
            raise
        if not self.apps:
            error = AppLoadError('no app to load (the configuration lists none)')
            error.app_id = 0
            raise error

    def start(self):
        """§2.3: listen, start the cores (the engine's), tell the core we are ready."""
        self.engine.start()
        self.send_event({
            'event': 'ready',
            'pid': self.pid,
            'runtime': platform.python_implementation(),
            'runtimeVersion': platform.python_version(),
            'bridgeApi': BRIDGE_API,
            'threads': self.threads,
            'cores': self.cores,
            'loop': self.loop_name,
            # What this bridge can run (docs/loop-engines.md); the core checks it.
            'loops': list(LOOP_ENGINES),
            'suspendEngines': list(SUSPEND_ENGINES),
            'apps': [{'id': app_id, 'mountpoint': mountpoint}
                     for app_id, mountpoint, _ in self.apps],
        })


# ---------------------------------------------------------------------------------------------
# Loop engines (docs/loop-engines.md)
# ---------------------------------------------------------------------------------------------

# Every engine this bridge can run, and the suspend engines of its async engines.
LOOP_ENGINES = ('simple', 'async', 'asyncio', 'gevent')
SUSPEND_ENGINES = ('greenlet',)


class SimpleEngine:
    """uWSGI's "simple" loop: --threads OS threads, each one core serving one request at a
    time. The uwsgi async API works here too, by blocking the calling thread (uWSGI makes
    async_sleep a no-op outside async mode; sleeping is what the app meant)."""

    name = 'simple'

    def __init__(self, bridge):
        self.bridge = bridge
        self.stop_thread = None

    def prepare(self):
        """Before the apps load (the gevent engine imports gevent and monkey patches here)."""

    def listen(self):
        bridge = self.bridge
        bridge.listener = socket.socket(fileno=bridge.listen_fd)
        bridge.listener.listen(bridge.backlog)
        # Non-blocking so that a thread losing the race for a connection gets EAGAIN instead of
        # sleeping in accept() where a graceful stop could not wake it.
        bridge.listener.setblocking(False)

    def start(self):
        bridge = self.bridge
        self.listen()
        for index in range(bridge.threads):
            bridge.workers.append(Worker(bridge, index))
        for worker in bridge.workers:
            worker.start()

    def serve_forever(self):
        # Nothing left for the main thread: the workers serve, the control thread decides when
        # the process ends (every exit goes through os._exit).
        threading.Event().wait()

    def request_stop(self):
        # In its own thread so the control thread keeps reading: a non-graceful stop or EOF
        # must still end us while requests drain.
        if self.stop_thread is None:
            self.stop_thread = threading.Thread(target=self.graceful_stop, name='tsuwsgi-stop',
                                                daemon=True)
            self.stop_thread.start()

    def graceful_stop(self):
        """Stop accepting, close idle persistent connections, let busy threads finish."""
        self.bridge.stop_workers()
        for worker in self.bridge.workers:
            worker.join()
        run_hook(sys.modules['uwsgi'], 'atexit')
        hard_exit(0)

    def current_core(self):
        worker = threading.current_thread()
        return worker if isinstance(worker, Worker) else None

    def all_cores(self):
        return self.bridge.workers

    def core_frames(self):
        """(title, frame) of requests parked outside any thread's stack (async engines)."""
        return ()

    # -- the uwsgi async API (uwsgi_module.py calls these) ---------------------------------------

    def async_sleep(self, seconds):
        if seconds > 0:
            time.sleep(seconds)
        return b''

    def wait_fd(self, fd, timeout, write):
        poller = select.poll()
        poller.register(fd, select.POLLOUT if write else select.POLLIN)
        ready = poller.poll(timeout * 1000 if timeout and timeout > 0 else None)
        core = self.current_core()
        if core is not None:
            core.ready_fd = fd if ready else -1
        return b''

    def ready_fd(self):
        core = self.current_core()
        return core.ready_fd if core is not None else -1

    def suspend(self):
        # No suspend engine: nothing else runs on this core's thread (uWSGI returns True too).
        return True


def create_engine(bridge):
    if bridge.loop_name == 'simple':
        return SimpleEngine(bridge)
    if bridge.loop_name not in LOOP_ENGINES:
        raise EngineError('unknown loop engine %r (this bridge runs %s)'
                          % (bridge.loop_name, ', '.join(LOOP_ENGINES)))
    # The async engines live in their own file, compiled by hand like the uwsgi module so no
    # __pycache__ is written next to the bridge, and only when one is selected.
    path = os.path.join(HERE, 'loops.py')
    with open(path, 'rb') as source_file:
        code = compile(source_file.read(), path, 'exec', dont_inherit=True)
    module = types.ModuleType('tsuwsgi_loops')
    module.__file__ = path
    sys.modules['tsuwsgi_loops'] = module
    exec(code, module.__dict__)
    return module.create_engine(bridge, sys.modules[__name__])


def run_hook(uwsgi_module, name):
    hook = getattr(uwsgi_module, name, None)
    if hook is not None:
        try:
            hook()
        except BaseException as exc:
            log('python bridge: uwsgi.%s failed:' % name)
            log_exception(exc)


def install_uwsgi_module():
    """Make `import uwsgi` return our API module, whatever is installed in site-packages.

    Compiled by hand rather than imported so no __pycache__ is written next to the bridge.
    """
    path = os.path.join(HERE, 'uwsgi_module.py')
    with open(path, 'rb') as source_file:
        code = compile(source_file.read(), path, 'exec', dont_inherit=True)
    module = types.ModuleType('uwsgi')
    module.__file__ = path
    sys.modules['uwsgi'] = module
    exec(code, module.__dict__)
    return module


def setup_python(plugin):
    """sys.path and sys.argv as uWSGI sets them up for the apps."""
    # Running `python3 bridge.py` put this directory first on sys.path; apps must not see it.
    # uWSGI's embedded interpreter has '' (the working directory) there instead, which is
    # what makes `--module app` find app.py after --chdir.
    if sys.path and os.path.abspath(sys.path[0] or '.') == HERE:
        sys.path[0] = ''
    else:
        sys.path.insert(0, '')
    entries = []
    for entry in plugin.get('pythonpath') or ():
        if any(char in entry for char in '*?['):
            import glob
            entries.extend(sorted(glob.glob(entry)))
        else:
            entries.append(entry)
    sys.path[0:0] = entries
    pyargv = plugin.get('pyargv')
    sys.argv = ['uwsgi'] + (pyargv.split() if pyargv else [])


def main():
    # Ctrl-C in a terminal signals the whole process group: the core decides how we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sys.stdout.reconfigure(line_buffering=True)  # app print()s reach the log promptly
    except (AttributeError, ValueError):
        pass

    # Check the inherited descriptors before we open any file: a missing fd 4 would otherwise
    # be reused by our own pipe and we would wait on ourselves instead of on the core.
    for variable, default, what in (('TSUWSGI_LISTEN_FD', 3, 'pool socket'),
                                    ('TSUWSGI_CONTROL_FD', 4, 'control channel')):
        fd = int(os.environ.get(variable) or default)
        try:
            os.fstat(fd)
        except OSError:
            log('python bridge: fd %d (the %s) is not open; this script is started by '
                'tsuwsgi (see docs/bridge-protocol.md)' % (fd, what))
            hard_exit(1)

    config = json.loads(os.environ.get('TSUWSGI_BRIDGE_CONFIG') or '{}')
    bridge = Bridge(config)
    threading.Thread(target=bridge.control_loop, name='tsuwsgi-control', daemon=True).start()
    setup_python(config.get('plugin') or {})
    uwsgi_module = install_uwsgi_module()
    uwsgi_module._setup(bridge, config)

    # The loop engine is set up before the apps load: gevent's monkey patching must come
    # first, and asyncio apps may take the event loop at import time.
    try:
        bridge.engine = create_engine(bridge)
        bridge.engine.prepare()
    except EngineError as exc:
        log('python bridge: the %s loop engine cannot run: %s' % (bridge.loop_name, exc))
        bridge.send_event({'event': 'engine-failed', 'engine': bridge.loop_name,
                           'message': str(exc)})
        hard_exit(1)

    try:
        bridge.load(uwsgi_module)
    except AppLoadError as exc:
        cause = exc.__cause__ or exc
        details = ''.join(traceback.format_exception(type(cause), cause, cause.__traceback__))
        log(details.rstrip('\n'))
        log(str(exc))
        bridge.send_event({'event': 'load-failed', 'app': getattr(exc, 'app_id', 0),
                           'message': str(exc), 'details': details})
        hard_exit(UWSGI_FAILED_APP_CODE)

    run_hook(uwsgi_module, 'post_fork_hook')
    bridge.start()
    bridge.engine.serve_forever()


if __name__ == '__main__':
    main()
