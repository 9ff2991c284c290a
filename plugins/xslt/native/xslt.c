/*
 * tsuwsgi_xslt: XSLT 1.0 transformations through libxslt, for the xslt plugin (plugins/xslt/).
 * Node has no XSLT engine, and uWSGI's xslt plugin is libxslt: using the same library is what
 * makes the output byte for byte uWSGI's (output method, indentation, escaping, encodings).
 *
 * Plain Node-API (ABI-stable across Node versions), built by build.ts beside it.
 *
 *   transform(doc, stylesheetPath, params, callback)
 *     doc       a file path (string: the `xslt:` action's doc=) or the XML bytes (Buffer: the
 *               `toxslt` transformation's response body)
 *     params    [name, value, name, value…]: XSLT string parameters
 *     callback(failedStage, output, messages)
 *               failedStage null on success, else "doc" | "stylesheet" | "transform" | "output";
 *               output a Buffer (null on failure); messages what libxml2/libxslt reported
 *               (parser errors, xsl:message…), "" when nothing
 *
 * Why it is built this way:
 * - The work runs in libuv's thread pool (napi_create_async_work): parsing and transforming
 *   a large document takes milliseconds to seconds, which must not stall the event loop.
 * - Parsed stylesheets are cached by path, and thrown away when the file's mtime, size or
 *   inode change. A parsed stylesheet is only used by one transformation at a time: each
 *   cache entry keeps a few idle copies, and a transformation that finds none parses its own
 *   (returned to the cache afterwards, up to MAX_IDLE). So nothing relies on libxslt being
 *   safe for concurrent use of one stylesheet.
 * - libxml2/libxslt report errors through callbacks; they are collected per thread
 *   (__thread) into the job's message buffer and handed to JavaScript, which logs them, as
 *   uWSGI's log shows them.
 * - Parameters are passed as string parameters (xsltQuoteUserParams): uWSGI wraps each value
 *   in double quotes and evaluates it as XPath, so a value with a `"` fails the request or,
 *   worse, injects XPath (document('/etc/passwd')) from a query string. Values without `"`
 *   give the same result either way.
 * - Documents given by path are read with entity substitution and the external DTD loaded,
 *   as uWSGI reads them (it sets xmlSubstituteEntitiesDefault(1) and xmlLoadExtDtdDefaultValue
 *   before every transformation; libxml2 keeps those per thread, here they are parse options).
 *   Response bodies are read with no options, as uWSGI's xmlReadMemory(…, 0) does.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <libxslt/transform.h>
#include <libxslt/variables.h>
#include <libxslt/xslt.h>
#include <libxslt/xsltInternals.h>
#include <libxslt/xsltutils.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Idle parsed copies kept per stylesheet (about the thread pool's size). */
#define MAX_IDLE 4
/* Messages kept per job: enough for any real error report, bounded against a flood of xsl:message. */
#define MAX_MESSAGES (64 * 1024)

/* ---- error collection ---------------------------------------------------------------- */

typedef struct {
  char *buf;
  size_t len;
  size_t cap;
} msgbuf;

static __thread msgbuf *tl_messages;

static void msg_append(msgbuf *m, const char *s, size_t n) {
  if (m->len + n > MAX_MESSAGES) n = MAX_MESSAGES > m->len ? MAX_MESSAGES - m->len : 0;
  if (n == 0) return;
  if (m->len + n + 1 > m->cap) {
    size_t cap = m->cap ? m->cap : 256;
    while (cap < m->len + n + 1) cap *= 2;
    char *b = (char *)realloc(m->buf, cap);
    if (b == NULL) return;
    m->buf = b;
    m->cap = cap;
  }
  memcpy(m->buf + m->len, s, n);
  m->len += n;
  m->buf[m->len] = 0;
}

/* libxml2's and libxslt's generic error callback: printf-style pieces of a report. */
static void on_error(void *ctx, const char *fmt, ...) {
  (void)ctx;
  msgbuf *m = tl_messages;
  if (m == NULL) return;
  char small[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    msg_append(m, small, (size_t)n);
    return;
  }
  char *big = (char *)malloc((size_t)n + 1);
  if (big == NULL) return;
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  msg_append(m, big, (size_t)n);
  free(big);
}

/* ---- stylesheet cache ---------------------------------------------------------------- */

typedef struct sheet_entry {
  char *path;
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  unsigned long generation;
  xsltStylesheetPtr idle[MAX_IDLE];
  int n_idle;
  struct sheet_entry *next;
} sheet_entry;

static uv_mutex_t cache_lock;
static sheet_entry *cache_head;

static int same_file(const sheet_entry *e, const struct stat *st) {
  return e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size && e->mtime.tv_sec == st->st_mtim.tv_sec &&
         e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/*
 * A parsed stylesheet for `path`, to be given back with sheet_release(). *entry is null when
 * the file could not be stat()ed: the stylesheet (if any) is then not cached. Null on a parse
 * error (reported through on_error).
 */
static xsltStylesheetPtr sheet_acquire(const char *path, sheet_entry **entry, unsigned long *generation) {
  struct stat st;
  *entry = NULL;
  if (stat(path, &st) != 0) return xsltParseStylesheetFile((const xmlChar *)path); /* libxslt says why */
  xsltStylesheetPtr stale[MAX_IDLE];
  int n_stale = 0;
  xsltStylesheetPtr ss = NULL;
  uv_mutex_lock(&cache_lock);
  sheet_entry *e = cache_head;
  while (e != NULL && strcmp(e->path, path) != 0) e = e->next;
  if (e == NULL) {
    e = (sheet_entry *)calloc(1, sizeof *e);
    if (e != NULL) e->path = strdup(path);
    if (e == NULL || e->path == NULL) {
      free(e);
      uv_mutex_unlock(&cache_lock);
      return xsltParseStylesheetFile((const xmlChar *)path);
    }
    e->next = cache_head;
    cache_head = e;
  }
  if (!same_file(e, &st)) {
    /* Changed since parsed: its idle copies go, copies in use are freed when given back. */
    for (int i = 0; i < e->n_idle; i++) stale[n_stale++] = e->idle[i];
    e->n_idle = 0;
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->size = st.st_size;
    e->mtime = st.st_mtim;
    e->generation++;
  }
  if (e->n_idle > 0) ss = e->idle[--e->n_idle];
  *entry = e;
  *generation = e->generation;
  uv_mutex_unlock(&cache_lock);
  for (int i = 0; i < n_stale; i++) xsltFreeStylesheet(stale[i]);
  /* A parse error is not cached: the next request tries again (and reports it again), as uWSGI. */
  if (ss == NULL) ss = xsltParseStylesheetFile((const xmlChar *)path);
  return ss;
}

static void sheet_release(sheet_entry *e, unsigned long generation, xsltStylesheetPtr ss) {
  if (ss == NULL) return;
  if (e != NULL) {
    uv_mutex_lock(&cache_lock);
    if (e->generation == generation && e->n_idle < MAX_IDLE) {
      e->idle[e->n_idle++] = ss;
      ss = NULL;
    }
    uv_mutex_unlock(&cache_lock);
  }
  if (ss != NULL) xsltFreeStylesheet(ss);
}

/* ---- the job ------------------------------------------------------------------------- */

typedef struct {
  napi_async_work work;
  napi_ref callback;
  napi_ref doc_buffer; /* keeps the body alive while the thread reads it */
  char *doc_path;
  const char *doc_data;
  size_t doc_len;
  char *stylesheet;
  char **params; /* name, value, …, NULL */
  size_t n_params;
  const char *failed;
  xmlChar *output;
  int output_len;
  msgbuf messages;
} job;

static void job_execute(napi_env env, void *data) {
  (void)env;
  job *j = (job *)data;
  tl_messages = &j->messages;
  /* Per thread in libxml2: route this thread's reports to the job. */
  xmlSetGenericErrorFunc(NULL, on_error);
  xmlSetStructuredErrorFunc(NULL, NULL);

  xmlDocPtr doc = j->doc_path != NULL ? xmlReadFile(j->doc_path, NULL, XML_PARSE_NOENT | XML_PARSE_DTDLOAD)
                                      : xmlReadMemory(j->doc_data, (int)j->doc_len, NULL, NULL, 0);
  if (doc == NULL) {
    j->failed = "doc";
    goto done;
  }
  sheet_entry *entry;
  unsigned long generation = 0;
  xsltStylesheetPtr ss = sheet_acquire(j->stylesheet, &entry, &generation);
  if (ss == NULL) {
    j->failed = "stylesheet";
    xmlFreeDoc(doc);
    goto done;
  }
  xmlDocPtr res = NULL;
  xsltTransformContextPtr ctxt = xsltNewTransformContext(ss, doc);
  if (ctxt != NULL) {
    xsltSetTransformErrorFunc(ctxt, NULL, on_error);
    if (j->n_params == 0 || xsltQuoteUserParams(ctxt, (const char **)j->params) == 0) res = xsltApplyStylesheetUser(ss, doc, NULL, NULL, NULL, ctxt);
    xsltFreeTransformContext(ctxt);
  }
  xmlFreeDoc(doc);
  if (res == NULL) {
    j->failed = "transform";
  } else {
    /* No bytes at all (an empty result) is a failure too, as in uWSGI, which tests the pointer
       xsltSaveResultToString leaves NULL then. */
    if (xsltSaveResultToString(&j->output, &j->output_len, res, ss) < 0 || j->output == NULL) j->failed = "output";
    xmlFreeDoc(res);
  }
  sheet_release(entry, generation, ss);
done:
  tl_messages = NULL;
}

static void job_free(napi_env env, job *j) {
  if (j->callback != NULL) napi_delete_reference(env, j->callback);
  if (j->doc_buffer != NULL) napi_delete_reference(env, j->doc_buffer);
  if (j->work != NULL) napi_delete_async_work(env, j->work);
  free(j->doc_path);
  free(j->stylesheet);
  if (j->params != NULL) {
    for (size_t i = 0; i < j->n_params; i++) free(j->params[i]);
    free(j->params);
  }
  if (j->output != NULL) xmlFree(j->output);
  free(j->messages.buf);
  free(j);
}

static void job_complete(napi_env env, napi_status status, void *data) {
  job *j = (job *)data;
  napi_value cb, recv, argv[3], result;
  napi_get_reference_value(env, j->callback, &cb);
  napi_get_undefined(env, &recv);
  if (status != napi_ok) j->failed = "transform"; /* cancelled: never happens, the work is not cancelable here */
  if (j->failed != NULL) {
    napi_create_string_utf8(env, j->failed, NAPI_AUTO_LENGTH, &argv[0]);
    napi_get_null(env, &argv[1]);
  } else {
    napi_get_null(env, &argv[0]);
    void *copy;
    napi_create_buffer_copy(env, (size_t)j->output_len, j->output != NULL ? (const void *)j->output : (const void *)"", &copy, &argv[1]);
  }
  /* libxml2 reports in UTF-8 (its internal encoding), quoting document lines converted to it. */
  napi_create_string_utf8(env, j->messages.buf != NULL ? j->messages.buf : "", j->messages.len, &argv[2]);
  job_free(env, j);
  napi_call_function(env, recv, cb, 3, argv, &result);
}

static napi_value throw_args(napi_env env, const char *msg) {
  napi_throw_type_error(env, "TSUWSGI_E_XSLT_ARGS", msg);
  return NULL;
}

/* A JS string as a malloc()ed UTF-8 C string, or NULL. */
static char *dup_string(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = (char *)malloc(len + 1);
  if (s == NULL) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

static napi_value js_transform(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 4) return throw_args(env, "transform(doc, stylesheet, params, callback) takes 4 arguments");
  napi_valuetype doc_type, ss_type, cb_type;
  bool is_buffer = false, is_array = false;
  napi_typeof(env, argv[0], &doc_type);
  napi_is_buffer(env, argv[0], &is_buffer);
  napi_typeof(env, argv[1], &ss_type);
  napi_is_array(env, argv[2], &is_array);
  napi_typeof(env, argv[3], &cb_type);
  if ((doc_type != napi_string && !is_buffer) || ss_type != napi_string || !is_array || cb_type != napi_function)
    return throw_args(env, "transform() needs a path or a Buffer, a stylesheet path, an array of strings and a callback");

  job *j = (job *)calloc(1, sizeof *j);
  if (j == NULL) return throw_args(env, "transform(): out of memory");
  uint32_t n = 0;
  napi_get_array_length(env, argv[2], &n);
  if (n % 2 != 0) {
    free(j);
    return throw_args(env, "transform(): params are name, value pairs");
  }
  j->params = (char **)calloc((size_t)n + 1, sizeof(char *));
  int ok = j->params != NULL;
  for (uint32_t i = 0; ok && i < n; i++) {
    napi_value item;
    napi_get_element(env, argv[2], i, &item);
    j->params[i] = dup_string(env, item);
    if (j->params[i] == NULL) ok = 0;
    else j->n_params = i + 1;
  }
  j->stylesheet = ok ? dup_string(env, argv[1]) : NULL;
  if (j->stylesheet == NULL) ok = 0;
  if (ok && is_buffer) {
    void *data;
    napi_get_buffer_info(env, argv[0], &data, &j->doc_len);
    j->doc_data = (const char *)data;
    if (j->doc_len > 0x7fffffff) ok = 0; /* libxml2 takes an int */
    else napi_create_reference(env, argv[0], 1, &j->doc_buffer);
  } else if (ok) {
    j->doc_path = dup_string(env, argv[0]);
    if (j->doc_path == NULL) ok = 0;
  }
  if (!ok) {
    job_free(env, j);
    return throw_args(env, "transform(): strings must not be huge, a body must be under 2 GiB");
  }
  napi_create_reference(env, argv[3], 1, &j->callback);
  napi_value name;
  napi_create_string_utf8(env, "tsuwsgi.xslt", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, job_execute, job_complete, j, &j->work) != napi_ok || napi_queue_async_work(env, j->work) != napi_ok) {
    job_free(env, j);
    return throw_args(env, "transform(): cannot queue the work");
  }
  return NULL;
}

/* Versions, for the start-up line and for checking the library the addon runs with. */
static napi_value js_versions(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value obj, v;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, xmlParserVersion, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "libxml2", v);
  napi_create_int32(env, xsltLibxsltVersion, &v);
  napi_set_named_property(env, obj, "libxslt", v);
  return obj;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  static int initialized = 0;
  if (!initialized) {
    initialized = 1;
    xmlInitParser();
    xsltInit();
    uv_mutex_init(&cache_lock);
    /* libxslt's own reports (stylesheet compilation) go through this process-wide callback. */
    xsltSetGenericErrorFunc(NULL, on_error);
  }
  napi_value fn;
  napi_create_function(env, "transform", NAPI_AUTO_LENGTH, js_transform, NULL, &fn);
  napi_set_named_property(env, exports, "transform", fn);
  napi_create_function(env, "versions", NAPI_AUTO_LENGTH, js_versions, NULL, &fn);
  napi_set_named_property(env, exports, "versions", fn);
  return exports;
}
