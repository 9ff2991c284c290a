import java.util.HashMap;

/** JWSGI Hello World for `npm run bench` (tsuwsgi --jwsgi Hello, uWSGI's jwsgi plugin). */
public class Hello {
  public static Object[] application(HashMap env) {
    HashMap<String, Object> headers = new HashMap<>();
    headers.put("Content-Type", "text/plain");
    headers.put("Content-Length", "11"); // as most apps send (uWSGI's jwsgi adds none itself)
    return new Object[] {200, headers, "Hello World"};
  }
}
