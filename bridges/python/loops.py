"""The async loop engines of tsuwsgi's Python bridge (docs/loop-engines.md).

Loaded by bridge.py (create_engine) only when the core selects one of them:

    async     uWSGI's async mode: --async N cores on one thread. The event engine is asyncio's
              selector loop (standard library); a core gives way where its app yields, and a
              yield after uwsgi.async_sleep()/wait_fd_read()/wait_fd_write() parks it until
              the timer or descriptor fires. `async def` apps are awaited.
    asyncio   uWSGI's asyncio plugin: the same cores, as tasks of the asyncio loop the app
              sees as its running loop (set before the apps are imported).
    gevent    uWSGI's gevent plugin: each core a greenlet on gevent's hub, running the
              threads engine's Worker code with gevent's sockets and select.

With --greenlet (the suspend engine) the async/asyncio cores run the app's code in a
greenlet, so uwsgi.suspend() parks a request from any call depth, and uWSGI's idiom of
switching to the parent greenlet until a loop callback switches back works.

Per-core state lives on the core objects: the running core is a context variable
(asyncio tasks and greenlets each carry their own context). Standard library only, apart
from gevent/greenlet when those engines are asked for.
"""
import asyncio
import contextvars
import errno
import inspect
import io
import os
import socket
import stat
import sys
import tempfile

# The core whose request is running (each asyncio task and request greenlet has its own).
CURRENT = contextvars.ContextVar('tsuwsgi_core', default=None)

# step() result when the app's iterator is exhausted (StopIteration must not cross a coroutine).
DONE = object()

# Request bodies up to this size are read into memory before the app runs; larger ones go to
# a temporary file. wsgi.input must never block the loop, so the whole body is read first.
BODY_IN_MEMORY = 1 << 20

# Receive buffer per async core: the largest vars block (64 KiB) plus room for a body behind it.
CORE_BUFFER = 65536 + 16384


def create_engine(bridge, ns):
    """`ns` is the bridge module (Response, Connection, parse_vars… and EngineError)."""
    if bridge.loop_name in ('async', 'asyncio'):
        return AsyncioEngine(bridge, ns)
    if bridge.loop_name == 'gevent':
        return GeventEngine(bridge, ns)
    raise ns.EngineError('unknown loop engine %r' % (bridge.loop_name,))


def deepest_frame(obj):
    """The innermost frame of a suspended generator/coroutine chain (for stack dumps)."""
    frame = None
    seen = 0
    while obj is not None and seen < 100:
        seen += 1
        frame = getattr(obj, 'gi_frame', None) or getattr(obj, 'cr_frame', None) \
            or getattr(obj, 'ag_frame', None) or frame
        obj = getattr(obj, 'gi_yieldfrom', None) or getattr(obj, 'cr_await', None) \
            or getattr(obj, 'ag_await', None)
    return frame


# ---------------------------------------------------------------------------------------------
# async / asyncio
# ---------------------------------------------------------------------------------------------

class AsyncCore:
    """One async core: serves one persistent connection from the core at a time, one request
    at a time on it. Holds what the uwsgi async API registered for the request in progress."""

    def __init__(self, engine, index):
        bridge = engine.bridge
        self.engine = engine
        self.ns = engine.ns
        self.loop = engine.loop
        self.index = index
        self.requests = 0
        self.conn = engine.ns.Connection(CORE_BUFFER)
        self.sock = None
        self.task = None
        self.outbox = []
        self.idle_wait = False   # waiting for the next packet on a persistent connection
        self.app_state = None    # the request's generator/coroutine, for stack dumps
        self.glet = None         # the request's greenlet (greenlet suspend engine)
        # Registered by wait_fd_read/wait_fd_write/async_sleep until the next yield/suspend.
        self.waits = []          # (fd, is_write)
        self.timeout = None
        self.ready_fd = -1
        self.token = None        # the armed wait; callbacks of an older one are ignored
        self.armed = []
        self.timer = None
        self.base_environ = dict(bridge.base_environ)
        if bridge.cores > 1:
            self.base_environ['uwsgi.core'] = index

    # -- waiting (uWSGI's wait_read_hook / wait_write_hook / wait_milliseconds_hook) -----------

    def arm(self, callback):
        """Call callback(fd) once: when a registered descriptor is ready (its fd) or the
        timeout passes (-1). With nothing registered: at the next loop iteration (-1)."""
        loop = self.loop
        token = object()
        self.token = token

        def fire(fd):
            if self.token is token:
                self.token = None
                callback(fd)

        for fd, is_write in self.waits:
            if is_write:
                loop.add_writer(fd, fire, fd)
            else:
                loop.add_reader(fd, fire, fd)
            self.armed.append((fd, is_write))
        if self.timeout is not None:
            self.timer = loop.call_later(self.timeout, fire, -1)
        elif not self.waits:
            self.timer = loop.call_soon(fire, -1)

    def disarm(self):
        loop = self.loop
        self.token = None
        for fd, is_write in self.armed:
            try:
                if is_write:
                    loop.remove_writer(fd)
                else:
                    loop.remove_reader(fd)
            except (OSError, ValueError):
                pass
        self.armed = []
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.waits = []
        self.timeout = None

    async def settle(self, reschedule):
        """After an app step: wait for what it registered; else (after a yield) let the other
        cores run, as every yield is a scheduling point in uWSGI's async mode."""
        if not self.waits and self.timeout is None:
            if reschedule:
                await asyncio.sleep(0)
            return
        fut = self.loop.create_future()
        self.arm(lambda fd: fut.done() or fut.set_result(fd))
        try:
            self.ready_fd = await fut
        finally:
            self.disarm()

    async def step(self, fn, *args):
        """Run one piece of app code (the call, one next()) as this core; DONE when an
        iterator is exhausted. With the greenlet suspend engine it runs in a greenlet that
        may suspend itself; we wait for it to finish."""
        engine = self.engine
        if engine.greenlet is None:
            try:
                return fn(*args)
            except StopIteration:
                return DONE
        fut = self.loop.create_future()

        def body():
            try:
                value = fn(*args)
            except StopIteration:
                value = DONE
            except BaseException as exc:  # handed back to the coroutine, which reports it
                fut.set_result((False, exc))
                return
            fut.set_result((True, value))

        glet = engine.greenlet.greenlet(body, parent=engine.main_greenlet)
        glet.gr_context = contextvars.copy_context()
        self.glet = glet
        try:
            glet.switch()
            ok, value = await fut
        finally:
            self.glet = None
        if not ok:
            raise value
        return value

    # -- the connection -------------------------------------------------------------------------

    async def serve(self, sock):
        CURRENT.set(self)
        self.sock = sock
        self.conn.attach(sock)
        try:
            await self.serve_connection()
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a bug in the bridge: keep the core alive
            self.ns.log_exception(exc)
        finally:
            self.outbox.clear()
            self.disarm()
            self.conn.sock = None
            self.sock = None
            sock.close()
            self.engine.release(self)

    async def send(self, data):
        try:
            await self.loop.sock_sendall(self.sock, data)
        except OSError:
            return False
        return True

    def hello(self):
        ns = self.ns
        bridge = self.engine.bridge
        payload = ns.pack_vars((('pid', str(bridge.pid)), ('worker_id', str(bridge.worker_id)),
                                ('core', str(self.index)), ('bridge_api', str(ns.BRIDGE_API))))
        return bytes((ns.HELLO_MODIFIER1,)) + len(payload).to_bytes(2, 'little') + b'\x01' + payload

    async def serve_connection(self):
        ns = self.ns
        packet = await self.read_packet()
        if packet is None:
            return
        persistent = False
        if packet[0] == ns.HELLO_MODIFIER1 and packet[3] == 0:
            if not await self.send(self.hello()):
                return
            persistent = True
            packet = await self.read_packet()
        while packet is not None:
            if packet[0] == ns.HELLO_MODIFIER1 and packet[3] == 0:
                if not await self.send(self.hello()):
                    return
            elif not await self.handle_packet(packet, persistent) or not persistent:
                return
            packet = await self.read_packet()

    async def fill(self):
        """recv() more bytes after the unread ones; 0 at EOF or on an error."""
        conn = self.conn
        if conn.pos == conn.end:
            conn.pos = conn.end = 0
        elif conn.end == len(conn.buf):
            conn.compact()
        try:
            n = await self.loop.sock_recv_into(conn.sock, conn.view[conn.end:])
        except OSError:
            return 0
        conn.end += n
        return n

    async def wait_for_packet(self):
        """Bytes on an idle connection: False at EOF, or when stopping and none are queued."""
        conn = self.conn
        if self.engine.stopping:
            # Serve what the core already sent (a pipelined request), but wait for no more.
            try:
                n = conn.sock.recv_into(conn.view[conn.end:])
            except OSError:
                return False
            conn.end += n
            return n > 0
        self.idle_wait = True
        try:
            return await self.fill() > 0
        finally:
            self.idle_wait = False

    async def read_packet(self):
        conn = self.conn
        if conn.pos == conn.end:
            conn.pos = conn.end = 0
            if not await self.wait_for_packet():
                return None
        while conn.end - conn.pos < 4:
            if not await self.fill():
                return None
        buf = conn.buf
        size = buf[conn.pos + 1] | buf[conn.pos + 2] << 8
        if conn.pos + 4 + size > len(buf):
            conn.compact()  # the vars block must be contiguous in the buffer
        while conn.end - conn.pos < 4 + size:
            if not await self.fill():
                return None
        pos = conn.pos
        conn.pos = pos + 4 + size
        return buf[pos], pos + 4, size, buf[pos + 3]

    async def read_body(self, length):
        """The whole request body as a file object (wsgi.input must not block the loop)."""
        conn = self.conn
        available = min(conn.end - conn.pos, length)
        if length <= BODY_IN_MEMORY:
            out = bytearray(length)
            out[:available] = conn.view[conn.pos:conn.pos + available]
            conn.pos += available
            got = available
            if got < length:
                dest = memoryview(out)
                try:
                    while got < length:
                        n = await self.loop.sock_recv_into(self.sock, dest[got:])
                        if n == 0:
                            raise self.ns.ClientDisconnected(
                                'client disconnected while sending the request body '
                                '(%d bytes missing)' % (length - got))
                        got += n
                finally:
                    dest.release()
            return io.BytesIO(out)
        spool = tempfile.TemporaryFile()
        spool.write(conn.view[conn.pos:conn.pos + available])
        conn.pos += available
        remaining = length - available
        while remaining:
            conn.pos = conn.end = 0
            n = await self.loop.sock_recv_into(self.sock, conn.view[:min(remaining, len(conn.buf))])
            if n == 0:
                spool.close()
                raise self.ns.ClientDisconnected('client disconnected while sending the request '
                                                 'body (%d bytes missing)' % remaining)
            spool.write(conn.view[:n])
            remaining -= n
        spool.seek(0)
        return spool

    # -- one request ----------------------------------------------------------------------------

    async def handle_packet(self, packet, persistent):
        ns = self.ns
        modifier1, start, size, _ = packet
        environ = self.base_environ.copy()
        try:
            ns.parse_vars(self.conn, start, size, environ)
            length = environ.get('CONTENT_LENGTH')
            length = int(length) if length else 0
            if length < 0:
                raise ValueError('negative CONTENT_LENGTH')
        except (ValueError, IndexError) as exc:
            ns.log('invalid uwsgi packet (%s): closing the connection' % (exc,))
            return False
        if 'HTTP_CONTENT_LENGTH' in environ:
            del environ['HTTP_CONTENT_LENGTH']
        if 'HTTP_CONTENT_TYPE' in environ:
            del environ['HTTP_CONTENT_TYPE']
        environ['wsgi.url_scheme'] = ns.url_scheme(environ)
        try:
            environ['wsgi.input'] = await self.read_body(length)
        except OSError as exc:
            ns.log_disconnect(environ, exc)
            return False
        if modifier1 == ns.STRIP_SCRIPT_NAME_MODIFIER1:
            ns.strip_script_name(environ)
        if 'UWSGI_CHDIR' in environ:
            ns.apply_chdir(environ)
        try:
            return await self.run_app(self.engine.bridge.select_app(environ), environ, persistent)
        finally:
            self.requests += 1
            environ['wsgi.input'].close()

    async def run_app(self, app, environ, persistent):
        ns = self.ns
        response = ns.Response(self.sock, persistent, environ.get('REQUEST_METHOD') == 'HEAD',
                               environ.get('SERVER_PROTOCOL') or 'HTTP/1.0', self.outbox)
        # Every write is queued and sent by flush(): the socket is the loop's, never blocked on.
        response.defer = True
        result = None
        try:
            result = await self.step(app, environ, response.start_response)
            if inspect.isawaitable(result):
                # An `async def` app (tsuwsgi): it awaits inside this core's task.
                self.app_state = result
                result = await result
            await self.settle(False)
            keep = await self.send_result(response, result)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # SystemExit from an app must not end the loop either
            keep = await self.app_failed(response, environ, exc)
        finally:
            self.app_state = None
            self.disarm()
        if result is not None and type(result) not in (list, tuple, bytes):
            try:
                aclose = getattr(result, 'aclose', None)
                if aclose is not None:
                    await aclose()
                else:
                    close = getattr(result, 'close', None)
                    if close is not None:
                        await self.step(close)  # PEP 3333: always, even after errors or for HEAD
            except BaseException as exc:
                ns.log_exception(exc)
        return keep

    async def flush(self, response):
        if not self.outbox:
            return
        data = b''.join(self.outbox)
        self.outbox.clear()
        try:
            await self.loop.sock_sendall(self.sock, data)
        except OSError:
            response.disconnected = True
            raise

    async def send_result(self, response, result):
        ns = self.ns
        kind = type(result)
        if (kind is list or kind is tuple) and not response.headers_sent \
                and all(type(chunk) is bytes for chunk in result):
            response.commit(b''.join(result), sum(map(len, result)))
        elif kind is bytes:
            # Not an iterable of bytes, but uWSGI accepts it (as one chunk).
            if not response.headers_sent:
                response.commit(result, len(result))
            else:
                response.write(result)
        elif kind is ns.FileWrapper and await self.send_file(response, result):
            pass
        elif hasattr(result, '__aiter__'):
            # An async iterable (an `async def` generator app): streamed as it yields.
            self.app_state = result
            async for chunk in result:
                response.write(chunk)
                await self.flush(response)
        else:
            iterator = await self.step(iter, result)
            if inspect.isgenerator(iterator):
                self.app_state = iterator
            write = response.write
            while True:
                chunk = await self.step(next, iterator)
                if chunk is DONE:
                    break
                write(chunk)
                await self.flush(response)
                # A yield: wait for what the app registered, or let the other cores run.
                await self.settle(True)
        keep = response.finish()
        await self.flush(response)
        return keep

    async def send_file(self, response, wrapper):
        """wsgi.file_wrapper over a real binary file: sendfile() through the loop."""
        ns = self.ns
        filelike = wrapper.filelike
        try:
            fd = filelike.fileno()
            info = os.fstat(fd)
        except (AttributeError, OSError, ValueError):
            return False
        if not stat.S_ISREG(info.st_mode) or response.headers_sent \
                or 'b' not in getattr(filelike, 'mode', 'b'):
            return False
        try:
            offset = filelike.tell()
        except (AttributeError, OSError, ValueError):
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        size = max(0, info.st_size - offset)
        response.commit(b'', size)
        await self.flush(response)
        mode = response.mode
        if mode == ns.MODE_NONE or size == 0:
            return True
        count = min(size, response.remaining) if mode == ns.MODE_LENGTH else size
        if mode == ns.MODE_LENGTH:
            response.remaining -= count
        try:
            sent = await self.loop.sock_sendfile(self.sock, filelike, offset, count)
        except OSError:
            response.disconnected = True
            raise
        if sent < count and mode == ns.MODE_LENGTH:
            response.remaining += count - sent  # finish() sees the missing bytes and closes
        return True

    async def app_failed(self, response, environ, exc):
        """The app (or sending its response) raised: True if the connection is still usable."""
        ns = self.ns
        if response.disconnected or isinstance(exc, ns.ClientDisconnected):
            ns.log_disconnect(environ, exc)
            return False
        ns.log_exception(exc)
        if response.headers_sent:
            try:
                await self.flush(response)  # what the app produced before failing
            except OSError:
                pass
            return False  # the response is truncated; closing tells the core so
        self.outbox.clear()
        body = ns.format_exception(exc) if self.engine.bridge.catch_exceptions \
            else 'Internal Server Error'
        try:
            response.send_error(body)
            await self.flush(response)
        except OSError as send_exc:
            ns.log_disconnect(environ, send_exc)
            return False
        return True


class AsyncioEngine:
    """The `async` and `asyncio` engines: N cores as tasks of one asyncio loop."""

    def __init__(self, bridge, ns):
        self.bridge = bridge
        self.ns = ns
        self.name = bridge.loop_name
        self.loop = None
        self.cores = []
        self.idle = []
        self.core_free = None
        self.accept_task = None
        self.stopping = False
        self.greenlet = None
        self.main_greenlet = None

    def prepare(self):
        # Created before the apps are imported, so asyncio.get_event_loop() at import time
        # (uWSGI's asyncio examples do that) returns the loop that serves them.
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        if self.bridge.suspend_engine == 'greenlet':
            try:
                import greenlet
            except ImportError as exc:
                raise self.ns.EngineError(
                    'the greenlet suspend engine (--greenlet) needs the greenlet module, which %s '
                    'cannot import (%s): install it for this interpreter (Debian: apt-get install '
                    'python3-greenlet; else pip install greenlet), or name one that has it with '
                    '--python-bin' % (sys.executable, exc))
            self.greenlet = greenlet
            self.main_greenlet = greenlet.getcurrent()
        elif self.name == 'asyncio' and self.bridge.worker_id == 1:
            # What uWSGI says too; tsuwsgi's asyncio engine still serves `async def` apps and
            # `yield uwsgi.async_sleep()` generators without one.
            self.ns.log('*** asyncio mode without coroutine/greenthread engine loaded: '
                        'uwsgi.suspend() cannot park a request (add --greenlet) ***')

    def start(self):
        bridge = self.bridge
        listener = socket.socket(fileno=bridge.listen_fd)
        listener.listen(bridge.backlog)
        listener.setblocking(False)
        bridge.listener = listener
        self.cores = [AsyncCore(self, index) for index in range(bridge.cores)]
        # Popped from the end: the core that finished last (warm) serves next; index 0 first.
        self.idle = list(reversed(self.cores))

    def serve_forever(self):
        self.accept_task = self.loop.create_task(self.accept_loop())
        self.loop.run_forever()

    async def accept_loop(self):
        """Accept only while a core is free, as uWSGI's async loop takes a connection only
        into a free core (the other bridge processes of the pool take the rest)."""
        loop = self.loop
        listener = self.bridge.listener
        while not self.stopping:
            if not self.idle:
                self.core_free = loop.create_future()
                await self.core_free
                continue
            try:
                sock, _ = await loop.sock_accept(listener)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.ns.log('accept(): %s' % (exc,))
                    await asyncio.sleep(0.1)
                    continue
                raise
            if self.stopping:
                sock.close()
                return
            sock.setblocking(False)
            core = self.idle.pop()
            core.task = loop.create_task(core.serve(sock))

    def release(self, core):
        self.idle.append(core)
        if self.core_free is not None and not self.core_free.done():
            self.core_free.set_result(None)

    # -- graceful stop (the gbcw hook) ----------------------------------------------------------

    def request_stop(self):
        """From the control thread."""
        self.loop.call_soon_threadsafe(self.graceful_stop)

    def graceful_stop(self):
        if self.stopping:
            return
        self.stopping = True
        self.bridge.stopping = True
        if self.accept_task is not None:
            self.accept_task.cancel()
        for core in self.cores:
            if core.idle_wait and core.sock is not None:
                try:
                    core.sock.shutdown(socket.SHUT_RD)  # wakes it; queued bytes still arrive
                except OSError:
                    pass
        self.loop.create_task(self.finish_stop())

    async def finish_stop(self):
        busy = [core.task for core in self.cores if core.task is not None and not core.task.done()]
        if busy:
            await asyncio.wait(busy)
        self.ns.run_hook(sys.modules['uwsgi'], 'atexit')
        self.ns.hard_exit(0)

    # -- what the bridge and the uwsgi module ask -----------------------------------------------

    def current_core(self):
        return CURRENT.get()

    def all_cores(self):
        return self.cores

    def core_frames(self):
        out = []
        for core in list(self.cores):
            frame = None
            if core.glet is not None:
                frame = core.glet.gr_frame
            if frame is None and core.app_state is not None:
                frame = deepest_frame(core.app_state)
            if frame is not None:
                out.append(('async core %d (suspended request):' % core.index, frame))
        return out

    def async_sleep(self, seconds):
        core = CURRENT.get()
        if core is not None:
            core.timeout = max(0.0, seconds)
        return b''

    def wait_fd(self, fd, timeout, write):
        core = CURRENT.get()
        if core is not None:
            core.waits.append((fd, write))
            if timeout > 0:
                core.timeout = timeout
        return b''

    def ready_fd(self):
        core = CURRENT.get()
        return core.ready_fd if core is not None else -1

    def suspend(self):
        """With greenlet: park the request's greenlet until what it registered fires (or the
        next loop iteration). Without a suspend engine there is nothing to park (uWSGI's
        behaviour too): the wait happens at the app's next yield."""
        core = CURRENT.get()
        if core is None or self.greenlet is None:
            return True
        glet = self.greenlet.getcurrent()
        if glet is self.main_greenlet:
            return True
        core.arm(glet.switch)
        try:
            fd = self.main_greenlet.switch()
        finally:
            core.disarm()
        core.ready_fd = fd if isinstance(fd, int) else -1
        return True


# ---------------------------------------------------------------------------------------------
# gevent
# ---------------------------------------------------------------------------------------------

class GeventEngine:
    """Each core a greenlet on gevent's hub running the threads engine's Worker (its blocking
    socket calls are cooperative on gevent's sockets). Mixing uWSGI's async API with gevent's
    is forbidden in uWSGI; here the async API simply waits on gevent's hub."""

    def __init__(self, bridge, ns):
        self.bridge = bridge
        self.ns = ns
        self.name = 'gevent'
        self.gevent = None
        self.by_greenlet = {}
        self.greenlets = []
        self.stop_watcher = None
        self.stopping = False

    def prepare(self):
        try:
            import gevent
            import gevent.select
            import gevent.socket
        except ImportError as exc:
            raise self.ns.EngineError(
                'the gevent loop engine needs the gevent module, which %s cannot import (%s): '
                'install it for this interpreter (Debian: apt-get install python3-gevent; else pip '
                'install gevent), or name one that has it with --python-bin'
                % (sys.executable, exc))
        major = gevent.__version__.split('.')[0]
        if major.isdigit() and int(major) < 1:
            raise self.ns.EngineError('the gevent loop engine needs gevent >= 1.0 (found %s)'
                                      % gevent.__version__)
        if self.bridge.loop_settings.get('monkeyPatch'):
            from gevent import monkey
            monkey.patch_all()
        self.gevent = gevent
        # The control thread (a real OS thread) asks for a graceful stop through this watcher:
        # its send() is the thread-safe way to wake the hub.
        self.stop_watcher = gevent.get_hub().loop.async_()
        self.stop_watcher.start(lambda: gevent.spawn(self.graceful_stop))

    def start(self):
        gevent = self.gevent
        ns = self.ns
        bridge = self.bridge
        listener = gevent.socket.socket(fileno=bridge.listen_fd)
        listener.listen(bridge.backlog)
        listener.setblocking(False)
        bridge.listener = listener
        # The Worker code, made cooperative: gevent's select, and sendfile() waits on the hub.
        ns.Worker._select = staticmethod(gevent.select.select)
        ns.wait_writable = lambda sock: gevent.socket.wait_write(sock.fileno())
        for index in range(bridge.cores):
            bridge.workers.append(ns.Worker(bridge, index))
        for worker in bridge.workers:
            self.greenlets.append(gevent.spawn(self.run_worker, worker))

    def run_worker(self, worker):
        self.by_greenlet[self.gevent.getcurrent()] = worker
        worker.run()

    def serve_forever(self):
        # The hub runs the cores; the control thread decides when the process ends.
        while True:
            self.gevent.sleep(3600)

    def request_stop(self):
        """From the control thread."""
        self.stop_watcher.send()

    def graceful_stop(self):
        """In a greenlet: stop accepting, wake idle cores, let busy ones finish, exit."""
        if self.stopping:
            return
        self.stopping = True
        self.bridge.stop_workers()
        self.gevent.joinall(self.greenlets)
        self.ns.run_hook(sys.modules['uwsgi'], 'atexit')
        self.ns.hard_exit(0)

    def current_core(self):
        return self.by_greenlet.get(self.gevent.getcurrent())

    def all_cores(self):
        return self.bridge.workers

    def core_frames(self):
        out = []
        for glet, worker in list(self.by_greenlet.items()):
            frame = getattr(glet, 'gr_frame', None)
            if frame is not None:
                out.append(('gevent core %d (greenlet):' % worker.index, frame))
        return out

    def async_sleep(self, seconds):
        self.gevent.sleep(max(0.0, seconds))
        return b''

    def wait_fd(self, fd, timeout, write):
        wait = self.gevent.socket.wait_write if write else self.gevent.socket.wait_read
        core = self.current_core()
        try:
            wait(fd, timeout=timeout if timeout > 0 else None)
            ready = fd
        except socket.timeout:
            ready = -1
        if core is not None:
            core.ready_fd = ready
        return b''

    def ready_fd(self):
        core = self.current_core()
        return core.ready_fd if core is not None else -1

    def suspend(self):
        self.gevent.sleep(0)
        return True
