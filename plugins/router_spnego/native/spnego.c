/*
 * tsuwsgi_spnego: the acceptor side of Kerberos SPNEGO ("Negotiate") through MIT's GSS-API
 * (libgssapi_krb5), for the router_spnego plugin (plugins/router_spnego/). Node has no GSS-API,
 * and uWSGI's router_spnego is these same calls: using the library is what makes keytabs,
 * replay caches, krb5.conf and the KRB5_* environment work as they do for uWSGI.
 *
 * Plain Node-API (ABI-stable across Node versions), built by build.ts beside it.
 *
 *   accept(service, token, callback)
 *     service   the host-based service name (latin1 string: the request var bytes), e.g.
 *               "HTTP" or "HTTP@www.example.com" (GSS_C_NT_HOSTBASED_SERVICE)
 *     token     a Buffer: the decoded `Authorization: Negotiate` token
 *     callback(user, output, messages)
 *               user      the client principal (gss_display_name, realm included: uWSGI does
 *                         not strip it) as a latin1 string, or null when the token is refused
 *               output    the token to send back (mutual authentication), a Buffer, or null
 *                         when GSS-API gave none
 *               messages  what GSS-API reported, one line per message, "" when nothing
 *
 * Why it is built this way:
 * - The work runs in libuv's thread pool (napi_create_async_work): acquiring the acceptor
 *   credentials reads the keytab, and accepting a token writes the replay cache (a file, with
 *   fsync), so neither may run on the event loop.
 * - Each call is one complete, stateless exchange, as in uWSGI: import the service name,
 *   acquire acceptor credentials from the default keytab (KRB5_KTNAME, else krb5.conf's
 *   default_keytab_name, else /etc/krb5.keytab), accept the token, delete the context. A
 *   mechanism that needs a second round trip (GSS_S_CONTINUE_NEEDED) is refused: there is no
 *   context kept between requests to continue.
 * - Unlike uWSGI, a completed context without an output token (a client that did not ask for
 *   mutual authentication) is accepted: uWSGI treats the missing token as a failure and
 *   answers 401 forever to such clients.
 * - Messages: every status message of the major and the minor code (gss_display_status is
 *   called until its message context is 0), in uWSGI's "FUNC() error (major|minor): TEXT"
 *   form, for the plugin to log.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <gssapi/gssapi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Messages kept per call: any real GSS-API report fits. */
#define MAX_MESSAGES 4096

typedef struct {
  napi_async_work work;
  napi_ref callback;
  char *service;
  size_t service_len;
  void *token;
  size_t token_len;
  /* results */
  char *user;
  size_t user_len;
  void *output;
  size_t output_len;
  char messages[MAX_MESSAGES];
  size_t messages_len;
} job;

static void msg_add(job *j, const char *func, const char *kind, const gss_buffer_desc *text) {
  size_t room = MAX_MESSAGES - j->messages_len;
  int n = snprintf(j->messages + j->messages_len, room, "%s() error (%s): %.*s\n", func, kind, (int)text->length, (const char *)text->value);
  if (n < 0) return;
  j->messages_len += (size_t)n < room ? (size_t)n : room - 1;
}

/* Every status message of one code (GSS_C_GSS_CODE or GSS_C_MECH_CODE). */
static void msg_status(job *j, const char *func, OM_uint32 code, int type) {
  OM_uint32 msg_ctx = 0, min_stat;
  do {
    gss_buffer_desc text = GSS_C_EMPTY_BUFFER;
    OM_uint32 ret = gss_display_status(&min_stat, code, type, GSS_C_NO_OID, &msg_ctx, &text);
    if (GSS_ERROR(ret)) return;
    if (text.length > 0) msg_add(j, func, type == GSS_C_GSS_CODE ? "major" : "minor", &text);
    gss_release_buffer(&min_stat, &text);
  } while (msg_ctx != 0);
}

static void msg_err(job *j, const char *func, OM_uint32 major, OM_uint32 minor) {
  msg_status(j, func, major, GSS_C_GSS_CODE);
  if (minor != 0) msg_status(j, func, minor, GSS_C_MECH_CODE);
}

static void msg_text(job *j, const char *text) {
  size_t room = MAX_MESSAGES - j->messages_len;
  int n = snprintf(j->messages + j->messages_len, room, "%s\n", text);
  if (n < 0) return;
  j->messages_len += (size_t)n < room ? (size_t)n : room - 1;
}

static void job_execute(napi_env env, void *data) {
  (void)env;
  job *j = (job *)data;
  OM_uint32 ret, min_ret;
  gss_name_t server_name = GSS_C_NO_NAME;
  gss_name_t client_name = GSS_C_NO_NAME;
  gss_ctx_id_t context = GSS_C_NO_CONTEXT;
  gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
  gss_buffer_desc output = GSS_C_EMPTY_BUFFER;
  gss_buffer_desc service = { j->service_len, j->service };
  gss_buffer_desc token = { j->token_len, j->token };

  ret = gss_import_name(&min_ret, &service, GSS_C_NT_HOSTBASED_SERVICE, &server_name);
  if (GSS_ERROR(ret)) {
    msg_err(j, "gss_import_name", ret, min_ret);
    goto end;
  }
  ret = gss_acquire_cred(&min_ret, server_name, GSS_C_INDEFINITE, GSS_C_NO_OID_SET, GSS_C_ACCEPT, &cred, NULL, NULL);
  if (GSS_ERROR(ret)) {
    msg_err(j, "gss_acquire_cred", ret, min_ret);
    goto end;
  }
  ret = gss_accept_sec_context(&min_ret, &context, cred, &token, GSS_C_NO_CHANNEL_BINDINGS, &client_name, NULL, &output, NULL, NULL, NULL);
  if (GSS_ERROR(ret)) {
    msg_err(j, "gss_accept_sec_context", ret, min_ret);
    goto end;
  }
  if (ret & GSS_S_CONTINUE_NEEDED) {
    msg_text(j, "gss_accept_sec_context() error (major): the mechanism asks for another round trip, which is not supported (each request is one complete exchange)");
    goto end;
  }
  gss_buffer_desc name = GSS_C_EMPTY_BUFFER;
  ret = gss_display_name(&min_ret, client_name, &name, NULL);
  if (GSS_ERROR(ret)) {
    msg_err(j, "gss_display_name", ret, min_ret);
    goto end;
  }
  j->user = (char *)malloc(name.length + 1);
  if (j->user != NULL) {
    memcpy(j->user, name.value, name.length);
    j->user[name.length] = 0;
    j->user_len = name.length;
  }
  gss_release_buffer(&min_ret, &name);
  if (j->user != NULL && output.length > 0) {
    j->output = malloc(output.length);
    if (j->output == NULL) {
      free(j->user);
      j->user = NULL;
    } else {
      memcpy(j->output, output.value, output.length);
      j->output_len = output.length;
    }
  }
  if (j->user == NULL) msg_text(j, "out of memory");
end:
  if (output.value != NULL) gss_release_buffer(&min_ret, &output);
  if (server_name != GSS_C_NO_NAME) gss_release_name(&min_ret, &server_name);
  if (client_name != GSS_C_NO_NAME) gss_release_name(&min_ret, &client_name);
  if (cred != GSS_C_NO_CREDENTIAL) gss_release_cred(&min_ret, &cred);
  if (context != GSS_C_NO_CONTEXT) gss_delete_sec_context(&min_ret, &context, GSS_C_NO_BUFFER);
}

static void job_free(napi_env env, job *j) {
  if (j->callback != NULL) napi_delete_reference(env, j->callback);
  if (j->work != NULL) napi_delete_async_work(env, j->work);
  free(j->service);
  free(j->token);
  free(j->user);
  free(j->output);
  free(j);
}

static void job_complete(napi_env env, napi_status status, void *data) {
  job *j = (job *)data;
  napi_value cb, recv, argv[3], result;
  napi_get_reference_value(env, j->callback, &cb);
  napi_get_undefined(env, &recv);
  if (status != napi_ok || j->user == NULL) {
    napi_get_null(env, &argv[0]);
    napi_get_null(env, &argv[1]);
  } else {
    /* latin1: one char per byte, as request vars are (the app gets the principal's bytes). */
    napi_create_string_latin1(env, j->user, j->user_len, &argv[0]);
    if (j->output_len > 0) {
      void *copy;
      napi_create_buffer_copy(env, j->output_len, j->output, &copy, &argv[1]);
    } else {
      napi_get_null(env, &argv[1]);
    }
  }
  napi_create_string_latin1(env, j->messages, j->messages_len, &argv[2]);
  job_free(env, j);
  napi_call_function(env, recv, cb, 3, argv, &result);
}

static napi_value throw_args(napi_env env, const char *msg) {
  napi_throw_type_error(env, "TSUWSGI_E_SPNEGO_ARGS", msg);
  return NULL;
}

static napi_value js_accept(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 3) return throw_args(env, "accept(service, token, callback) takes 3 arguments");
  napi_valuetype service_type, cb_type;
  bool is_buffer = false;
  napi_typeof(env, argv[0], &service_type);
  napi_is_buffer(env, argv[1], &is_buffer);
  napi_typeof(env, argv[2], &cb_type);
  if (service_type != napi_string || !is_buffer || cb_type != napi_function) return throw_args(env, "accept() needs a service name, a Buffer and a callback");

  job *j = (job *)calloc(1, sizeof *j);
  if (j == NULL) return throw_args(env, "accept(): out of memory");
  size_t len = 0;
  napi_get_value_string_latin1(env, argv[0], NULL, 0, &len);
  j->service = (char *)malloc(len + 1);
  void *data = NULL;
  size_t token_len = 0;
  napi_get_buffer_info(env, argv[1], &data, &token_len);
  /* The token is copied: the Buffer's memory is not ours to read from another thread. */
  j->token = malloc(token_len > 0 ? token_len : 1);
  if (j->service == NULL || j->token == NULL) {
    job_free(env, j);
    return throw_args(env, "accept(): out of memory");
  }
  napi_get_value_string_latin1(env, argv[0], j->service, len + 1, &j->service_len);
  if (token_len > 0) memcpy(j->token, data, token_len);
  j->token_len = token_len;
  napi_create_reference(env, argv[2], 1, &j->callback);
  napi_value name;
  napi_create_string_utf8(env, "tsuwsgi.spnego", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, job_execute, job_complete, j, &j->work) != napi_ok || napi_queue_async_work(env, j->work) != napi_ok) {
    job_free(env, j);
    return throw_args(env, "accept(): cannot queue the work");
  }
  return NULL;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  napi_create_function(env, "accept", NAPI_AUTO_LENGTH, js_accept, NULL, &fn);
  napi_set_named_property(env, exports, "accept", fn);
  return exports;
}
