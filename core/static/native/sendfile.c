/*
 * tsuwsgi_sendfile: sendfile(2) from a file to a client socket, driven by Node's own event
 * loop. Node has no sendfile, so without this every static byte is read into user space and
 * written back (1 MiB static files ran at 0.84x uWSGI, which uses sendfile). DESIGN.md §7
 * allows a native addon only for what Node cannot do; this is the whole of it.
 *
 * Plain Node-API (ABI-stable across Node versions) plus libuv from the Node binary.
 *
 *   send(socketFd, fileFd, offset, length, timeoutMs, callback)
 *     -> [error, sent]  finished at once (callback never called), error null or an errno name
 *     -> transfer       pending: callback(error, sent) is called once, later, from the loop
 *   cancel(transfer)    stop a pending transfer; its callback is not called
 *
 * Why it is built this way:
 * - When the transfer must wait, the socket descriptor is dup()ed: Node may close its own
 *   descriptor at any time (the client went away), and the number could be reused by a new
 *   connection before we notice; our duplicate keeps the connection open until we are done.
 * - sendfile runs on the main thread on the non-blocking socket (Node sets O_NONBLOCK on it,
 *   and the duplicate shares it): with the file in the page cache one call moves what the
 *   socket buffer takes, in microseconds. When the socket is full (EAGAIN) a uv_poll_t on the
 *   duplicate waits for writability. Nothing is parked in libuv's thread pool, so a slow
 *   client never holds a thread that file system work needs.
 * - An inactivity timeout (the core's --socket-timeout, as uWSGI waits for writability) ends
 *   a transfer to a client that stopped reading, so a dead peer never pins the connection.
 * - The caller owns the file descriptor and closes it after the callback (or cancel).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <unistd.h>

/* One sendfile call moves at most this much: the socket buffer is the real limit, this only
   bounds a call if a huge buffer was configured. */
#define MAX_CALL (8 * 1024 * 1024)

typedef struct transfer {
  napi_env env;
  napi_ref callback;
  napi_async_context async_context;
  uv_poll_t poll;
  uv_timer_t timer;
  int sock;
  int file;
  int64_t offset;
  int64_t remaining;
  int64_t sent;
  uint64_t timeout_ms;
  uint64_t last_progress;
  int open_handles;
  int finished;
} transfer;

/* Move bytes until done (0), the socket is full (UV_EAGAIN) or an error (a negative libuv code). */
static int pump(transfer *t) {
  while (t->remaining > 0) {
    size_t want = t->remaining > MAX_CALL ? MAX_CALL : (size_t)t->remaining;
    off_t off = (off_t)t->offset;
    ssize_t n = sendfile(t->sock, t->file, &off, want);
    if (n > 0) {
      t->offset += n;
      t->remaining -= n;
      t->sent += n;
      continue;
    }
    if (n == 0) return UV_EOF; /* the file is shorter than announced (truncated since stat) */
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return UV_EAGAIN;
    return -errno;
  }
  return 0;
}

static void on_handle_closed(uv_handle_t *h) {
  transfer *t = (transfer *)h->data;
  if (--t->open_handles > 0) return;
  close(t->sock);
  free(t);
}

/* Stop polling and release everything; the caller has reported (or must not report) the outcome. */
static void release(transfer *t) {
  t->finished = 1;
  uv_poll_stop(&t->poll);
  uv_timer_stop(&t->timer);
  napi_delete_reference(t->env, t->callback);
  if (t->async_context != NULL) napi_async_destroy(t->env, t->async_context);
  t->async_context = NULL;
  /* The duplicate is closed when the poll handle is (libuv must not poll a closed descriptor). */
  uv_close((uv_handle_t *)&t->poll, on_handle_closed);
  uv_close((uv_handle_t *)&t->timer, on_handle_closed);
}

static napi_value outcome_error(napi_env env, int status) {
  napi_value v;
  if (status == 0) napi_get_null(env, &v);
  else napi_create_string_utf8(env, uv_err_name(status), NAPI_AUTO_LENGTH, &v);
  return v;
}

/* Report the outcome to JavaScript, as any libuv callback does (async hooks, microtasks). */
static void finish(transfer *t, int status) {
  napi_env env = t->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, argv[2], result;
  napi_get_reference_value(env, t->callback, &cb);
  napi_get_global(env, &recv); /* napi_make_callback needs an object receiver */
  argv[0] = outcome_error(env, status);
  napi_create_double(env, (double)t->sent, &argv[1]);
  napi_make_callback(env, t->async_context, recv, cb, 2, argv, &result);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    /* A throwing callback is an uncaught exception of the process, not ours to swallow. */
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
  if (!t->finished) release(t);
}

static void on_writable(uv_poll_t *h, int status, int events) {
  (void)events;
  transfer *t = (transfer *)h->data;
  if (t->finished) return;
  int64_t before = t->sent;
  /* On a socket error libuv stops the handle and reports UV_EBADF (its answer to POLLERR);
     the next sendfile says what really happened (ECONNRESET, EPIPE...). */
  int r = pump(t);
  if (t->sent > before) t->last_progress = uv_now(h->loop);
  if (status < 0 && r == UV_EAGAIN) r = status;
  if (r != UV_EAGAIN) finish(t, r);
}

static void on_timer(uv_timer_t *h) {
  transfer *t = (transfer *)h->data;
  if (t->finished) return;
  uint64_t idle = uv_now(h->loop) - t->last_progress;
  if (idle >= t->timeout_ms) {
    finish(t, UV_ETIMEDOUT);
    return;
  }
  /* Progress was made meanwhile: wait out the rest of the window from the last progress. */
  uv_timer_start(&t->timer, on_timer, t->timeout_ms - idle, 0);
}

static napi_value throw_error(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static napi_value sync_outcome(napi_env env, int status, int64_t sent) {
  napi_value arr, v;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, outcome_error(env, status));
  napi_create_double(env, (double)sent, &v);
  napi_set_element(env, arr, 1, v);
  return arr;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 6) return throw_error(env, "TSUWSGI_E_SENDFILE_ARGS", "send(socketFd, fileFd, offset, length, timeoutMs, callback) takes 6 arguments");
  int32_t sock_fd, file_fd;
  int64_t offset, length, timeout_ms;
  napi_valuetype cb_type;
  if (napi_get_value_int32(env, argv[0], &sock_fd) != napi_ok || napi_get_value_int32(env, argv[1], &file_fd) != napi_ok ||
      napi_get_value_int64(env, argv[2], &offset) != napi_ok || napi_get_value_int64(env, argv[3], &length) != napi_ok ||
      napi_get_value_int64(env, argv[4], &timeout_ms) != napi_ok || napi_typeof(env, argv[5], &cb_type) != napi_ok ||
      cb_type != napi_function || sock_fd < 0 || file_fd < 0 || offset < 0 || length < 0 || timeout_ms <= 0)
    return throw_error(env, "TSUWSGI_E_SENDFILE_ARGS", "send() needs descriptors >= 0, offset and length >= 0, a timeout > 0 and a callback");

  transfer *t = (transfer *)calloc(1, sizeof(transfer));
  if (t == NULL) return sync_outcome(env, UV_ENOMEM, 0);
  t->env = env;
  t->sock = sock_fd;
  t->file = file_fd;
  t->offset = offset;
  t->remaining = length;
  t->timeout_ms = (uint64_t)timeout_ms;

  /* Most transfers to a client that keeps up end here, in this call: Node cannot close its
     descriptor meanwhile, so it is used as it is (no dup, two system calls saved). */
  int r = pump(t);
  if (r == UV_EAGAIN) {
    /* From here on JavaScript runs between our writes: hold our own descriptor. */
    t->sock = fcntl(sock_fd, F_DUPFD_CLOEXEC, 0);
    if (t->sock < 0) r = -errno;
  }
  if (r != UV_EAGAIN) {
    int64_t sent = t->sent;
    free(t);
    return sync_outcome(env, r, sent);
  }

  uv_loop_t *loop;
  napi_value resource, name, external;
  napi_get_uv_event_loop(env, &loop);
  int pr = uv_poll_init(loop, &t->poll, t->sock);
  if (pr < 0) {
    int64_t sent = t->sent;
    close(t->sock);
    free(t);
    return sync_outcome(env, pr, sent);
  }
  uv_timer_init(loop, &t->timer);
  t->poll.data = t;
  t->timer.data = t;
  t->open_handles = 2;
  napi_create_reference(env, argv[5], 1, &t->callback);
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "tsuwsgi.sendfile", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &t->async_context);
  t->last_progress = uv_now(loop);
  uv_poll_start(&t->poll, UV_WRITABLE, on_writable);
  uv_timer_start(&t->timer, on_timer, t->timeout_ms, 0);
  /* The external does not own the transfer: release() frees it once both handles closed. */
  napi_create_external(env, t, NULL, NULL, &external);
  return external;
}

static napi_value js_cancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  napi_valuetype type;
  if (argc != 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_external || napi_get_value_external(env, argv[0], &data) != napi_ok)
    return throw_error(env, "TSUWSGI_E_SENDFILE_ARGS", "cancel() takes the transfer send() returned");
  transfer *t = (transfer *)data;
  /* A finished transfer may already be freed: JS forgets the handle at the callback, and
     only cancels one that has not called back (core/static/sendfile.ts). */
  if (!t->finished) release(t);
  return NULL;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  napi_create_function(env, "send", NAPI_AUTO_LENGTH, js_send, NULL, &fn);
  napi_set_named_property(env, exports, "send", fn);
  napi_create_function(env, "cancel", NAPI_AUTO_LENGTH, js_cancel, NULL, &fn);
  napi_set_named_property(env, exports, "cancel", fn);
  return exports;
}
