(ns tsuwsgi.jvm.ring
  "The Ring adapter of tsuwsgi's JVM bridge (see docs/jvm.md): the uwsgi vars of a request
  become a Ring request map (Ring SPEC 1.x, as uWSGI's ring plugin builds it), and the
  handler's response map becomes [status headers body] for the bridge's response code.")

(set! *warn-on-reflection* true)

(def ^:private request-methods
  {"GET" :get "POST" :post "PUT" :put "DELETE" :delete "HEAD" :head "OPTIONS" :options "PATCH" :patch})

(defn- header-name
  "HTTP_X_FORWARDED_FOR -> x-forwarded-for (uWSGI's rule: lower case, _ -> -)."
  [^String k start]
  (.replace (.toLowerCase (.substring k (int start)) java.util.Locale/ROOT) \_ \-))

(defn- request-headers [^java.util.Map env]
  (persistent!
   (reduce (fn [m ^java.util.Map$Entry e]
             (let [^String k (.getKey e)
                   v (.getValue e)]
               (if (string? v)
                 (let [name (cond (.startsWith k "HTTP_") (header-name k 5)
                                  (= k "CONTENT_TYPE") "content-type"
                                  (= k "CONTENT_LENGTH") "content-length")]
                   (cond (nil? name) m
                         (and (= name "content-length") (= v "")) m
                         (contains? m name) (assoc! m name (str (get m name) "," v))
                         :else (assoc! m name v)))
                 m)))
           (transient {})
           (.entrySet env))))

(defn- scheme [^java.util.Map env]
  (let [^String forced (.get env "UWSGI_SCHEME")
        ^String https (.get env "HTTPS")]
    (cond (and forced (not= forced "")) (keyword (.toLowerCase forced java.util.Locale/ROOT))
          (and https (or (.equalsIgnoreCase https "on") (.startsWith https "1"))) :https
          :else :http)))

(defn- non-empty [^java.util.Map env k]
  (let [^String v (.get env k)]
    (when (and v (not= v "")) v)))

(defn request-map
  "The Ring request map of one request."
  [^java.util.Map env body]
  (let [^String method (or (.get env "REQUEST_METHOD") "GET")
        ^String path (or (non-empty env "PATH_INFO") "/")
        port (non-empty env "SERVER_PORT")
        host (or (non-empty env "SERVER_NAME") (non-empty env "HTTP_HOST") "localhost")
        qs (non-empty env "QUERY_STRING")
        ct (non-empty env "CONTENT_TYPE")
        cl (non-empty env "CONTENT_LENGTH")]
    (cond-> {:server-port (if port (Integer/valueOf ^String port) (int 80))
             :server-name host
             :remote-addr (or (.get env "REMOTE_ADDR") "")
             :uri path
             :scheme (scheme env)
             :request-method (or (request-methods method) (keyword (.toLowerCase method java.util.Locale/ROOT)))
             :protocol (or (non-empty env "SERVER_PROTOCOL") "HTTP/1.0")
             :headers (request-headers env)
             :body body}
      qs (assoc :query-string qs)
      ct (assoc :content-type ct)
      cl (assoc :content-length (Long/valueOf ^String cl)))))

(defn- describe [x]
  (if (nil? x) "nil" (.getName (class x))))

(defn adapter
  "A BiFunction (env, body) -> Object[]{status headers body} calling the Ring handler."
  [handler]
  (reify java.util.function.BiFunction
    (apply [_ env body]
      (let [response (handler (request-map env body))]
        (when-not (map? response)
          (throw (IllegalStateException. (str "invalid Ring response: expected a map with :status, :headers and :body, got " (describe response)))))
        (let [status (:status response)]
          (when-not (integer? status)
            (throw (IllegalStateException. (str "invalid Ring response: :status must be an integer, got " (describe status)))))
          (object-array [(int status) (or (:headers response) {}) (:body response)]))))))
