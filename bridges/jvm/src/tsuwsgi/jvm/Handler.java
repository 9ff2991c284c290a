package tsuwsgi.jvm;

import java.util.HashMap;

/** A request handler of the JVM plugin, selected by the packet's modifier2 (0 JWSGI, 1 Ring). */
interface Handler {
  /** Run the app: returns {status, headers, body} as JWSGI defines them. */
  Object[] call(HashMap<String, Object> env, Body body) throws Throwable;

  /** For logs: `JWSGI app MyApp:application`. */
  String describe();
}
