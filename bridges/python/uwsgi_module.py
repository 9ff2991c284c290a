"""The ``uwsgi`` module that WSGI apps see when they run under tsuwsgi.

Real uWSGI builds this module into the server binary, so ``import uwsgi`` only works inside
uWSGI and apps use that to detect it. tsuwsgi's Python bridge installs this file as
``sys.modules['uwsgi']`` before it loads any app, so the import works here too (and wins
over any unrelated ``uwsgi`` package installed in site-packages).

Only the part of the API that one bridge process can honour on its own is here. Anything
else (cache, spooler, signals...) is deliberately absent so ``hasattr(uwsgi, 'cache_get')``
tells the truth, as it does on a uWSGI built without that feature.

Apps may also *assign* hooks, read by the bridge:
    uwsgi.post_fork_hook = fn   # called once in each bridge process after the apps loaded
    uwsgi.atexit = fn           # called on a graceful stop
    uwsgi.applications = {...}  # mountpoint -> callable (or name of a callable in the module)
"""
import sys

# Values filled in by the bridge (see _setup) from TSUWSGI_BRIDGE_CONFIG. The defaults only
# matter when this file is imported outside the bridge (tests, tooling).
version = b'2.0.28-tsuwsgi'
version_info = (2, 0, 28, 0, 'tsuwsgi')
hostname = b''
numproc = 1
buffer_size = 4096
started_on = 0
cores = 1
has_threads = True
is_a_reload = False
magic_table = {}
opt = {}
applications = None
loop = None
unbit = False

# Spooler return codes, as uWSGI defines them: code written against uwsgidecorators imports
# them at module level even when it never spools.
SPOOL_RETRY = -1
SPOOL_OK = -2
SPOOL_IGNORE = 0

# The bridge object (see bridge.py: Bridge), giving access to counters and the control channel.
_bridge = None
_worker_id = 0
_masterpid = 0


def _setup(bridge, config):
    """Called once by the bridge, before any app is imported."""
    global _bridge, _worker_id, _masterpid, version, version_info, hostname, numproc
    global buffer_size, started_on, cores, is_a_reload, opt, loop
    _bridge = bridge
    _worker_id = int(config.get('workerId') or 1)
    _masterpid = int(config.get('masterPid') or 0)
    version = str(config.get('version') or '2.0.28-tsuwsgi').encode('utf-8')
    version_info = _parse_version_info(version.decode('utf-8'))
    hostname = str(config.get('hostname') or '').encode('utf-8')
    numproc = int(config.get('processes') or 1)
    buffer_size = int(config.get('bufferSize') or 4096)
    started_on = int(config.get('startedOn') or 0)
    # Requests this process serves at once: its threads, or the async cores of the engine.
    engine = config.get('loop') or {}
    cores = int(engine.get('cores') or config.get('threads') or 1)
    # uWSGI: the loop engine's name when one was selected, else None.
    loop = engine.get('name') if engine.get('name') not in (None, 'simple') else None
    is_a_reload = bool(config.get('isReload'))
    opt = _options_as_uwsgi_does(config.get('options') or {})


def _parse_version_info(text):
    """'2.0.28-tsuwsgi-0.1.0' -> (2, 0, 28, 0, 'tsuwsgi'), the shape of uWSGI's version_info."""
    numbers = []
    for part in text.split('-', 1)[0].split('.')[:3]:
        numbers.append(int(part) if part.isdigit() else 0)
    while len(numbers) < 3:
        numbers.append(0)
    return (numbers[0], numbers[1], numbers[2], 0, 'tsuwsgi')


def _options_as_uwsgi_does(options):
    """uWSGI on Python 3 exposes option values as bytes, repeated options as lists, flags as True."""
    def convert(value):
        if value is True:
            return True
        if isinstance(value, bytes):
            return value
        return str(value).encode('utf-8')

    result = {}
    for name, value in options.items():
        if value is None or value is False:
            continue
        if isinstance(value, list):
            result[name] = [convert(item) for item in value]
        else:
            result[name] = convert(value)
    return result


def worker_id():
    return _worker_id


def masterpid():
    return _masterpid


def mule_id():
    # Bridges only run workers; mules are not served by this process.
    return 0


def log(message):
    """Write one line to the server log."""
    if isinstance(message, bytes):
        message = message.decode('utf-8', 'replace')
    stream = sys.stderr
    stream.write('%s\n' % (message,))
    stream.flush()
    return True


def request_id():
    """Requests completed by the current thread (uWSGI's per-core counter)."""
    return _bridge.request_id() if _bridge is not None else 0


def total_requests():
    """Requests completed by this process."""
    return _bridge.total_requests() if _bridge is not None else 0


def reload():
    """Ask the server to reload the workers (gracefully)."""
    if _bridge is not None:
        _bridge.send_event({'event': 'reload'})
    return True


def stop():
    """Ask the server to shut down."""
    if _bridge is not None:
        _bridge.send_event({'event': 'stop'})
    return True


# -- the async API (docs/loop-engines.md) -----------------------------------------------------
# As in uWSGI, wait_fd_read/wait_fd_write/async_sleep *register* what the current request
# waits for and return b''; the wait happens when the app yields (``yield uwsgi.async_sleep(2)``)
# or calls suspend(). With the simple engine (threads) they block the calling thread instead;
# with gevent they wait on gevent's hub at once.

def _fileno(fd):
    return fd if isinstance(fd, int) else fd.fileno()


def async_sleep(seconds):
    """Suspend the current request for `seconds` and let the other cores run."""
    return _bridge.engine.async_sleep(float(seconds))


def wait_fd_read(fd, timeout=0):
    """Wait (at the next yield/suspend) until `fd` is readable or `timeout` seconds pass."""
    return _bridge.engine.wait_fd(_fileno(fd), float(timeout or 0), False)


def wait_fd_write(fd, timeout=0):
    """Wait (at the next yield/suspend) until `fd` is writable or `timeout` seconds pass."""
    return _bridge.engine.wait_fd(_fileno(fd), float(timeout or 0), True)


def ready_fd():
    """The descriptor found ready by the last wait, or -1 when it timed out."""
    return _bridge.engine.ready_fd()


def suspend():
    """Give way to the other cores now (with a suspend engine: from any call depth)."""
    return _bridge.engine.suspend()


green_schedule = suspend
