# frozen_string_literal: true
#
# tsuwsgi's Ruby bridge: hosts Rack apps and serves them over the uwsgi protocol.
#
# The core starts one such process per pool slot as `ruby bridge.rb` with:
#   fd 3  the pool's unix stream socket (bound; we call listen() on it),
#   fd 4  the control channel (newline-delimited JSON, both ways),
#   TSUWSGI_BRIDGE_CONFIG  JSON describing the worker and the apps to load.
# The contract is docs/bridge-protocol.md; section numbers below (§2, §3.1...) refer to it.
#
# Shape of the process:
#   control thread   reads the control channel from the start (stop, stack dump, EOF = exit).
#   main thread      loads the apps, starts the workers, says "ready", then waits for the end.
#   N worker threads each accepts a connection, serves it (one request, or many once the core
#                    sent the *hello* packet), then accepts again (--threads N, native threads).
#
# Standard library only. The rack gem is loaded only to parse a rackup file with
# Rack::Builder (the app needs it anyway); without it a built-in builder (MiniBuilder below)
# understands the rackup DSL. See docs/rack.md.

require 'socket'
require 'json'
require 'stringio'
require 'io/nonblock'

module TsuwsgiRack
  BRIDGE_API = 1
  UWSGI_FAILED_APP_CODE = 22 # exit status when an app cannot be loaded (§2)
  HELLO_MODIFIER1 = 99       # uWSGI's "request configuration data" packet, our hello (§3.1)
  BINARY = Encoding::BINARY

  # Socket reads ask for this much at a time.
  READ_SIZE = 64 * 1024
  # Responses up to this size are sent together with the headers in one write.
  COALESCE_LIMIT = 64 * 1024
  # A body up to this size is copied behind the headers (one string); bigger ones are
  # written with writev, never copied.
  SMALL_BODY = 16 * 1024
  # Request bodies up to this size live in memory (a StringIO); bigger ones in a Tempfile.
  # --post-buffering N lowers or raises it (uWSGI: bodies above N bytes go to disk).
  DEFAULT_MEMORY_BODY_LIMIT = 1024 * 1024

  # How the body of the response in progress is framed (§3.1 "self-delimiting").
  MODE_NONE = 0    # no body may be sent (HEAD, 1xx, 204, 304): chunks are dropped
  MODE_RAW = 1     # bytes as the app gives them (the connection end delimits, or the app framed it)
  MODE_LENGTH = 2  # exactly Content-Length bytes: extra bytes dropped, missing bytes -> close
  MODE_CHUNKED = 3 # we added Transfer-Encoding: chunked and encode every chunk

  # Vars copied into the env even when empty (uWSGI's rack plugin); others only when non-empty.
  KEEP_EMPTY = %w[REQUEST_METHOD SCRIPT_NAME PATH_INFO QUERY_STRING SERVER_NAME SERVER_PORT]
               .to_h { |k| [k, true] }.freeze

  REASONS = {
    100 => 'Continue', 101 => 'Switching Protocols', 102 => 'Processing', 103 => 'Early Hints',
    200 => 'OK', 201 => 'Created', 202 => 'Accepted', 203 => 'Non-Authoritative Information',
    204 => 'No Content', 205 => 'Reset Content', 206 => 'Partial Content', 207 => 'Multi-Status',
    208 => 'Already Reported', 226 => 'IM Used',
    300 => 'Multiple Choices', 301 => 'Moved Permanently', 302 => 'Found', 303 => 'See Other',
    304 => 'Not Modified', 305 => 'Use Proxy', 307 => 'Temporary Redirect', 308 => 'Permanent Redirect',
    400 => 'Bad Request', 401 => 'Unauthorized', 402 => 'Payment Required', 403 => 'Forbidden',
    404 => 'Not Found', 405 => 'Method Not Allowed', 406 => 'Not Acceptable',
    407 => 'Proxy Authentication Required', 408 => 'Request Timeout', 409 => 'Conflict', 410 => 'Gone',
    411 => 'Length Required', 412 => 'Precondition Failed', 413 => 'Payload Too Large',
    414 => 'URI Too Long', 415 => 'Unsupported Media Type', 416 => 'Range Not Satisfiable',
    417 => 'Expectation Failed', 418 => "I'm a teapot", 421 => 'Misdirected Request',
    422 => 'Unprocessable Entity', 423 => 'Locked', 424 => 'Failed Dependency', 425 => 'Too Early',
    426 => 'Upgrade Required', 428 => 'Precondition Required', 429 => 'Too Many Requests',
    431 => 'Request Header Fields Too Large', 451 => 'Unavailable For Legal Reasons',
    500 => 'Internal Server Error', 501 => 'Not Implemented', 502 => 'Bad Gateway',
    503 => 'Service Unavailable', 504 => 'Gateway Timeout', 505 => 'HTTP Version Not Supported',
    506 => 'Variant Also Negotiates', 507 => 'Insufficient Storage', 508 => 'Loop Detected',
    510 => 'Not Extended', 511 => 'Network Authentication Required'
  }.freeze

  # "200" -> "200 OK", computed once per code.
  STATUS_TEXT = Hash.new { |h, code| h[code] = -"#{code} #{REASONS[code] || 'Unknown'}" }
  # Header names and values must not break the response apart.
  BAD_HEADER_NAME = /[^!#$%&'*+\-.^_`|~0-9A-Za-z]/.freeze # not an RFC 9110 token
  BAD_HEADER_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/.freeze
  HEADER_VALUE_SPECIAL = /[\x00-\x1f\x7f]/.freeze # newline (several values) or anything to check
  DIGITS = /\A\d+\z/.freeze
  HEADER_PLAIN = 0
  HEADER_SKIP = 1
  HEADER_CONTENT_LENGTH = 2
  HEADER_TRANSFER_ENCODING = 3
  # SERVER_PROTOCOL -> { code -> "HTTP/1.1 200 OK" }; a few protocols at most.
  STATUS_LINES = Hash.new do |by_protocol, protocol|
    proto = protocol.b.freeze
    lines = Hash.new { |h, code| h[code] = "#{proto} #{STATUS_TEXT[code]}".b.freeze }
    by_protocol.size < 8 ? by_protocol[proto] = lines : lines
  end
  CRLF = "\r\n"
  LAST_CHUNK = "0\r\n\r\n"

  def self.log(message)
    $stderr.write("#{message}\n")
  rescue IOError, SystemCallError
    nil
  end

  # The error as Ruby prints an uncaught one: "file:line:in `m': message (Class)" + backtrace.
  def self.describe(exc)
    exc.full_message(highlight: false, order: :top).chomp
  end

  def self.one_line(exc)
    "#{exc.class}: #{exc.message}".split.join(' ')
  end

  # Leave now: no at_exit handlers, no waiting for threads started by the app.
  def self.hard_exit(status)
    begin
      $stdout.flush
      $stderr.flush
    rescue IOError, SystemCallError
      nil
    end
    Process.exit!(status)
  end

  class ClientDisconnected < IOError; end
  class AppLoadError < StandardError
    attr_accessor :app_id, :details
  end
  # The app's response is not a Rack response.
  class InvalidResponse < StandardError; end

  # ------------------------------------------------------------------------------------------
  # rack.input
  # ------------------------------------------------------------------------------------------

  # rack.input of a request without a body: stateless, so one instance serves every thread.
  class EmptyInput
    def gets(*)
      nil
    end

    def each
      self
    end

    def rewind
      0
    end

    def size
      0
    end

    def eof?
      true
    end

    def read(length = nil, buffer = nil)
      buffer&.clear
      return nil if length && length.positive?

      buffer || String.new(encoding: BINARY)
    end
  end
  EMPTY_INPUT = EmptyInput.new.freeze

  # ------------------------------------------------------------------------------------------
  # Built-in rackup support, used only when the rack gem cannot be loaded
  # ------------------------------------------------------------------------------------------

  # The rackup DSL of Rack::Builder (use, run, map, warmup) for config.ru files, so a Rack
  # app that does not need the rack gem runs without it.
  class MiniBuilder
    def self.parse_file(path)
      if path.end_with?('.ru')
        source = File.read(path, encoding: 'UTF-8')
        source = source.sub(/\A\xEF\xBB\xBF/n.source.force_encoding('UTF-8'), '') if source.start_with?("\uFEFF")
        source = source.sub(/^__END__\n.*\z/m, '')
        # rubocop:disable Security/Eval
        eval("#{name}.new {\n#{source}\n}.to_app", TOPLEVEL_BINDING, path, 0)
        # rubocop:enable Security/Eval
      else
        require path
        Object.const_get(File.basename(path, '.rb').split('_').map(&:capitalize).join)
      end
    end

    def initialize(default_app = nil, &block)
      @use = []
      @map = nil
      @run = default_app
      @warmup = nil
      instance_eval(&block) if block
    end

    def use(middleware, *args, &block)
      if @map
        mapping = @map
        @map = nil
        @use << proc { |app| generate_map(app, mapping) }
      end
      @use << proc { |app| middleware.new(app, *args, &block) }
    end
    ruby2_keywords(:use)

    def run(app)
      @run = app
    end

    def warmup(prc = nil, &block)
      @warmup = prc || block
    end

    def map(path, &block)
      (@map ||= {})[path] = block
    end

    def to_app
      app = @map ? generate_map(@run, @map) : @run
      raise ArgumentError, 'missing run or map statement in the rackup file' unless app

      app = @use.reverse.inject(app) { |inner, wrap| wrap.call(inner) }
      @warmup&.call(app)
      app
    end

    def call(env)
      to_app.call(env)
    end

    private

    def generate_map(default_app, mapping)
      mapped = default_app ? { '/' => default_app } : {}
      mapping.each { |location, block| mapped[location] = self.class.new(default_app, &block).to_app }
      URLMap.new(mapped)
    end
  end

  # Rack::URLMap's path dispatch (without its host matching): the longest matching location
  # moves from PATH_INFO to SCRIPT_NAME.
  class URLMap
    def initialize(map)
      @mapping = map.map do |location, app|
        location = location.to_s.chomp('/')
        unless location.empty? || location.start_with?('/')
          raise ArgumentError, "map paths must start with /, got #{location.inspect}"
        end

        [location, app]
      end
      @mapping.sort_by! { |location, _| -location.bytesize }
    end

    def call(env)
      path = env['PATH_INFO'].to_s
      script_name = env['SCRIPT_NAME'].to_s
      @mapping.each do |location, app|
        next unless location.empty? || path == location || path.start_with?("#{location}/")

        begin
          env['SCRIPT_NAME'] = script_name + location
          env['PATH_INFO'] = path.byteslice(location.bytesize..)
          return app.call(env)
        ensure
          env['SCRIPT_NAME'] = script_name
          env['PATH_INFO'] = path
        end
      end
      [404, { 'Content-Type' => 'text/plain', 'X-Cascade' => 'pass' }, ["Not Found: #{path}"]]
    end
  end

  # How the rackup file was loaded: "Rack::Builder (rack 2.2.22)" or "built-in builder".
  def self.load_rackup(path)
    raise AppLoadError, "rackup file #{path} not found" unless File.file?(path)

    builder = nil
    begin
      require 'rack'
      builder = ::Rack::Builder if defined?(::Rack::Builder) && ::Rack::Builder.respond_to?(:parse_file)
    rescue LoadError
      builder = nil
    end
    result = (builder || MiniBuilder).parse_file(path)
    # rack 2 returns [app, options], rack 3 the app.
    app = result.is_a?(Array) ? result[0] : result
    how = builder ? "Rack::Builder (rack #{::Rack.respond_to?(:release) ? ::Rack.release : '?'})" : 'the built-in rackup builder (rack gem not available)'
    [app, how]
  end

  # ------------------------------------------------------------------------------------------
  # One worker thread (one uWSGI "core")
  # ------------------------------------------------------------------------------------------

  class Worker
    attr_reader :index, :thread
    attr_accessor :requests, :idle_sock

    def initialize(bridge, index)
      @bridge = bridge
      @index = index
      @requests = 0
      @idle_sock = nil
      @sock = nil
      # Receive buffer: unread bytes are @rbuf[@pos..].
      @rbuf = String.new(capacity: READ_SIZE, encoding: BINARY)
      @tmp = String.new(capacity: READ_SIZE, encoding: BINARY)
      @pos = 0
      # Responses held back while the core has already sent the next request (pipelining).
      @outbox = []
      @header_names = {}
      # One app (the usual case): no lookup per request.
      @single_app = bridge.single_app
      @gc = bridge.gc_freq > 0 # rubocop:disable Style/NumericPredicate
      @base_env = bridge.base_env.dup
      @base_env['uwsgi.core'] = index
      @base_env.freeze
    end

    def start
      @thread = Thread.new do
        Thread.current.name = "tsuwsgi-core-#{@index}"
        Thread.current[:tsuwsgi_worker] = self
        run
      end
    end

    def run
      until @bridge.stopping
        sock = accept
        break unless sock

        begin
          serve(sock)
        rescue Exception => e # rubocop:disable Lint/RescueException
          TsuwsgiRack.log(TsuwsgiRack.describe(e)) # a bug in the bridge: keep the thread alive
        ensure
          @outbox.clear
          @sock = nil
          begin
            sock.close
          rescue IOError, SystemCallError
            nil
          end
        end
      end
    end

    # Wait for a connection; nil once the bridge is stopping. The listener is used
    # non-blocking so a thread losing the race for a connection (to another thread or another
    # bridge process) never sleeps in accept() where a graceful stop could not wake it.
    def accept
      listener = @bridge.listener
      waitables = [listener, @bridge.wake_read]
      until @bridge.stopping
        sock = listener.accept_nonblock(exception: false)
        if sock == :wait_readable
          IO.select(waitables)
          next
        end
        if @bridge.stopping
          sock.close # too late: the core stopped sending us work
          return nil
        end
        # Blocking: Ruby then reads with one read() instead of read, EAGAIN, poll, read.
        # A graceful stop still wakes an idle thread (shutdown(SHUT_RD), see graceful_stop).
        sock.nonblock = false
        return sock
      end
      nil
    rescue Errno::ECONNABORTED, Errno::EINTR
      retry
    rescue Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM => e
      TsuwsgiRack.log("accept(): #{e.message}")
      sleep 0.1
      retry
    end

    # -- receiving ---------------------------------------------------------------------------

    # Read more bytes after the unread ones; false at EOF.
    def fill
      if @pos == @rbuf.bytesize
        @pos = 0
        @sock.readpartial(READ_SIZE, @rbuf)
      else
        if @pos.positive?
          @rbuf = @rbuf.byteslice(@pos, @rbuf.bytesize - @pos)
          @pos = 0
        end
        @sock.readpartial(READ_SIZE, @tmp)
        @rbuf << @tmp
      end
      true
    rescue EOFError, IOError, SystemCallError
      false
    end

    # True when the next packet's header and vars are already buffered (the core pipelined it).
    def next_request_buffered?
      avail = @rbuf.bytesize - @pos
      return false if avail < 4

      avail >= 4 + (@rbuf.getbyte(@pos + 1) | (@rbuf.getbyte(@pos + 2) << 8))
    end

    # Block until bytes arrive on an idle connection. False at EOF or when stopping.
    def wait_for_packet
      return false unless flush_outbox

      bridge = @bridge
      stopping = bridge.state_lock.synchronize do
        @idle_sock = @sock unless bridge.stopping
        bridge.stopping
      end
      # Stopping: serve what the core already sent, but do not wait for more.
      return fill_nonblocking if stopping

      begin
        fill
      ensure
        bridge.state_lock.synchronize { @idle_sock = nil }
      end
    end

    def fill_nonblocking
      @pos = 0
      @rbuf.clear
      r = @sock.read_nonblock(READ_SIZE, @rbuf, exception: false)
      r.is_a?(String)
    rescue EOFError, IOError, SystemCallError
      false
    end

    # Buffer the next packet's header and vars: [modifier1, vars start, vars size, modifier2],
    # or nil at EOF.
    def read_packet
      return nil if @pos == @rbuf.bytesize && !wait_for_packet

      while @rbuf.bytesize - @pos < 4
        return nil unless fill
      end
      size = @rbuf.getbyte(@pos + 1) | (@rbuf.getbyte(@pos + 2) << 8)
      while @rbuf.bytesize - @pos < 4 + size
        return nil unless fill
      end
      pos = @pos
      @pos = pos + 4 + size
      [@rbuf.getbyte(pos), pos + 4, size, @rbuf.getbyte(pos + 3)]
    end

    # The request body, fully read (Rack needs a rewindable rack.input): a StringIO, or a
    # Tempfile above the memory limit.
    def read_body(length)
      return EMPTY_INPUT if length.zero?

      avail = @rbuf.bytesize - @pos
      if length <= avail
        data = @rbuf.byteslice(@pos, length)
        @pos += length
        return StringIO.new(data)
      end
      if length <= @bridge.memory_body_limit
        data = @rbuf.byteslice(@pos, avail)
        @pos = @rbuf.bytesize
        rest = @sock.read(length - avail)
        got = avail + (rest ? rest.bytesize : 0)
        if got < length
          raise ClientDisconnected, "client disconnected while sending the request body (#{length - got} bytes missing)"
        end

        data << rest
        return StringIO.new(data)
      end
      spool_body(length, avail)
    rescue SystemCallError, IOError => e
      raise e if e.is_a?(ClientDisconnected)

      raise ClientDisconnected, "error reading the request body: #{e.message}"
    end

    def spool_body(length, avail)
      require 'tempfile'
      file = Tempfile.new('tsuwsgi-body')
      file.unlink # nothing to clean up, whatever happens
      file.binmode
      file.write(@rbuf.byteslice(@pos, avail)) if avail.positive?
      @pos = @rbuf.bytesize
      copied = avail + IO.copy_stream(@sock, file, length - avail)
      if copied < length
        file.close
        raise ClientDisconnected, "client disconnected while sending the request body (#{length - copied} bytes missing)"
      end
      file.rewind
      file
    end

    # -- the connection ----------------------------------------------------------------------

    # Serve one connection: a single request, or many after a hello (§3.1).
    def serve(sock)
      @sock = sock
      @rbuf.clear
      @pos = 0
      packet = read_packet
      return unless packet

      persistent = false
      if packet[0] == HELLO_MODIFIER1 && packet[3].zero?
        return unless answer_hello

        persistent = true
        packet = read_packet
      end
      while packet
        if packet[0] == HELLO_MODIFIER1 && packet[3].zero?
          return unless flush_outbox && answer_hello
        else
          keep = handle_packet(packet, persistent)
          unless keep && persistent
            flush_outbox
            return
          end
        end
        return if !@outbox.empty? && !next_request_buffered? && !flush_outbox

        packet = read_packet
      end
    end

    def answer_hello
      b = @bridge
      payload = pack_vars([['pid', b.pid.to_s], ['worker_id', b.worker_id.to_s], ['core', @index.to_s],
                           ['bridge_api', BRIDGE_API.to_s]])
      @sock.write([HELLO_MODIFIER1, payload.bytesize, 1].pack('Cvc') + payload)
      true
    rescue IOError, SystemCallError
      false
    end

    def pack_vars(pairs)
      out = String.new(encoding: BINARY)
      pairs.each do |k, v|
        out << [k.bytesize].pack('v') << k.b << [v.bytesize].pack('v') << v.b
      end
      out
    end

    def flush_outbox
      return true if @outbox.empty?

      @sock.write(*@outbox)
      @outbox.clear
      true
    rescue IOError, SystemCallError
      @outbox.clear
      false
    end

    # -- one request -------------------------------------------------------------------------

    # Decode the vars into a Rack env (latin-1/binary strings, as uWSGI does), run the app.
    # True if the connection can carry the next packet.
    def handle_packet(packet, persistent)
      _modifier1, start, size, = packet
      buf = @rbuf
      env = @base_env.dup
      pos = start
      stop = start + size
      begin
        while pos < stop
          len = buf.getbyte(pos) | (buf.getbyte(pos + 1) << 8)
          key = buf.byteslice(pos + 2, len)
          pos += 2 + len
          len = buf.getbyte(pos) | (buf.getbyte(pos + 1) << 8)
          if len > 0 # rubocop:disable Style/NumericPredicate (an opcode, not a method call)
            env[key] = buf.byteslice(pos + 2, len)
          elsif KEEP_EMPTY.key?(key)
            env[key] = +''.b
          end
          pos += 2 + len
        end
        raise ArgumentError, 'vars overrun the block' if pos != stop

        length = env['CONTENT_LENGTH']
        length = length ? Integer(length, 10) : 0
        raise ArgumentError, "negative CONTENT_LENGTH #{length}" if length.negative?
      rescue ArgumentError, NoMethodError, TypeError => e
        TsuwsgiRack.log("invalid uwsgi packet (#{e.message}): closing the connection")
        return false
      end

      env.delete('HTTP_CONTENT_LENGTH')
      env.delete('HTTP_CONTENT_TYPE')
      fix_env(env)
      begin
        input = read_body(length)
      rescue ClientDisconnected => e
        TsuwsgiRack.log(TsuwsgiRack.log_line_for(env, e.message))
        return false
      end
      env['rack.input'] = input
      if (dir = env['UWSGI_CHDIR']) && !dir.empty?
        # Routing's chdir:DIR (docs/bridge-protocol.md 3.2.1): the app runs there from now on.
        begin
          Dir.chdir(dir)
        rescue SystemCallError => e
          TsuwsgiRack.log("chdir(#{dir}) asked by the routing rule failed: #{e.message}")
        end
      end
      keep = run_app(@single_app || @bridge.select_app(env), env, input, persistent)
      @requests += 1
      @bridge.after_request if @gc
      keep
    end

    # The Rack SPEC's rules the uwsgi vars may not follow by themselves.
    def fix_env(env)
      env['SERVER_PORT'] = '80' if env['SERVER_PORT'].empty?
      env['SERVER_NAME'] = @bridge.hostname if env['SERVER_NAME'].empty?
      # SCRIPT_NAME is "" for the root, never "/" (PATH_INFO keeps the slash).
      if env['SCRIPT_NAME'] == '/'
        env['SCRIPT_NAME'] = ''
        path = env['PATH_INFO']
        env['PATH_INFO'] = "/#{path}" unless path&.start_with?('/')
      end
      scheme = env['UWSGI_SCHEME']
      unless scheme
        https = env['HTTPS']
        scheme = https && (https.casecmp?('on') || https.start_with?('1')) ? 'https' : 'http'
      end
      env['rack.url_scheme'] = scheme
    end

    # Call the app and send its response. True if the response was delimited.
    def run_app(app, env, input, persistent)
      protocol = env['SERVER_PROTOCOL'] || 'HTTP/1.0'
      res = Response.new(@sock, persistent, env['REQUEST_METHOD'] == 'HEAD', protocol, @outbox,
                         STATUS_LINES[protocol], @header_names)
      body = nil
      begin
        result = app.call(env)
        unless result.is_a?(Array) && result.size == 3
          raise InvalidResponse, "invalid Rack response: expected [status, headers, body], got #{describe_result(result)}"
        end

        status, headers, body = result
        res.start(status, headers)
        send_body(res, body)
        res.finish
      rescue Exception => e # rubocop:disable Lint/RescueException
        app_failed(res, env, e)
      ensure
        if body.respond_to?(:close)
          begin
            body.close # always, even after errors or for HEAD
          rescue Exception => e # rubocop:disable Lint/RescueException
            TsuwsgiRack.log(TsuwsgiRack.describe(e))
          end
        end
        input.close! if input.respond_to?(:close!) # a spooled body's Tempfile
      end
    end

    def describe_result(result)
      return "an Array of #{result.size} elements" if result.is_a?(Array)

      "a #{result.class}"
    end

    def send_body(res, body)
      if body.is_a?(Array)
        # Fast path: size known, one write for small responses (held back and batched with the
        # next ones when the core pipelines).
        total = 0
        i = 0
        n = body.size
        while i < n
          chunk = body[i]
          raise TypeError, "body chunks must be Strings, got #{chunk.class}" unless chunk.is_a?(String)

          total += chunk.bytesize
          i += 1
        end
        if total <= COALESCE_LIMIT
          res.defer = next_request_buffered?
          res.commit_parts(body, total)
        else
          res.commit_parts(nil, total)
          body.each { |chunk| res.write(chunk) }
        end
      elsif !res.app_framed && body.respond_to?(:to_path)
        res.send_file(body.to_path)
      elsif body.respond_to?(:each)
        body.each do |chunk|
          raise TypeError, "body chunks must be Strings, got #{chunk.class}" unless chunk.is_a?(String)

          res.write(chunk)
        end
      elsif body.is_a?(String)
        # Rack 1.x on Ruby 1.8 allowed a String body; accept it as one chunk.
        res.commit_parts([body], body.bytesize)
      else
        raise InvalidResponse, "the response body (a #{body.class}) responds neither to each nor to to_path"
      end
    end

    # The app (or sending its response) raised. True if the connection is still usable.
    def app_failed(res, env, exc)
      if res.disconnected || exc.is_a?(ClientDisconnected)
        TsuwsgiRack.log(TsuwsgiRack.log_line_for(env, "client disconnected: #{exc.message}"))
        return false
      end
      TsuwsgiRack.log(TsuwsgiRack.describe(exc))
      return false if res.headers_sent # truncated: closing tells the core so (§3.3)

      body = @bridge.catch_exceptions ? TsuwsgiRack.describe(exc) : 'Internal Server Error'
      begin
        res.send_error(body)
      rescue IOError, SystemCallError => e
        TsuwsgiRack.log(TsuwsgiRack.log_line_for(env, "client disconnected: #{e.message}"))
        return false
      end
      true
    end
  end

  def self.log_line_for(env, reason)
    "#{reason}, during #{env['REQUEST_METHOD'] || '-'} #{env['REQUEST_URI'] || env['PATH_INFO'] || '-'} (#{env['REMOTE_ADDR'] || '-'})"
  end

  # ------------------------------------------------------------------------------------------
  # One response: status and headers, framing (§3.1), writes
  # ------------------------------------------------------------------------------------------

  class Response
    attr_reader :headers_sent, :disconnected, :app_framed
    attr_accessor :defer

    def initialize(sock, persistent, is_head, protocol, outbox, lines, names)
      @sock = sock
      @lines = lines # code -> "HTTP/1.1 200 OK" for this protocol
      @names = names # header name -> HEADER_* (this thread's cache)
      @persistent = persistent
      @is_head = is_head
      @protocol = protocol
      @outbox = outbox
      @defer = false
      @headers_sent = false
      @disconnected = false
      @mode = MODE_NONE
      @remaining = 0
      @head = nil
    end

    # Validate status and headers and build the head (sent with the first body bytes).
    def start(status, headers)
      if status.is_a?(Integer) && status >= 100 && status <= 999
        @code = status
        head = +@lines[status]
      else
        head = status_line(status)
      end
      content_length = nil
      framed = false
      raise InvalidResponse, "the response headers (a #{headers.class}) do not respond to each" unless headers.respond_to?(:each)

      names = @names
      headers.each do |name, value|
        kind = names[name]
        kind = header_kind(name) if kind.nil?
        next if kind == HEADER_SKIP

        value = value.to_s unless value.is_a?(String)
        if kind == HEADER_CONTENT_LENGTH
          content_length = value
        elsif kind == HEADER_TRANSFER_ENCODING
          framed = true
        end
        if value.match?(HEADER_VALUE_SPECIAL)
          add_header_lines(head, name, value)
        else
          head << CRLF << name << ': ' << (value.ascii_only? || value.encoding == BINARY ? value : value.b)
        end
      end
      if content_length
        unless content_length.match?(DIGITS)
          digits = content_length.strip
          raise InvalidResponse, "invalid Content-Length #{content_length.inspect}" unless digits.match?(DIGITS)
        end
        content_length = content_length.to_i
      end
      @head = head
      @content_length = content_length
      @app_framed = framed
    end

    # What a header name is for us (validated once, then remembered per thread).
    def header_kind(name)
      raise InvalidResponse, "header names must be Strings, got #{name.inspect}" unless name.is_a?(String)

      kind = if name.start_with?('rack.')
               HEADER_SKIP # for the server, never sent (Rack SPEC)
             elsif name.empty? || name.match?(BAD_HEADER_NAME)
               raise InvalidResponse, "invalid header name #{name.inspect}"
             elsif name.casecmp?('content-length')
               HEADER_CONTENT_LENGTH
             elsif name.casecmp?('transfer-encoding')
               HEADER_TRANSFER_ENCODING
             else
               HEADER_PLAIN
             end
      @names[name.frozen? ? name : name.dup.freeze] = kind if @names.size < 512
      kind
    end

    # A value with a newline is several headers (Rack's way, e.g. for Set-Cookie); any other
    # control character (but tab) would break the response.
    def add_header_lines(head, name, value)
      value.split("\n").each do |item|
        raise InvalidResponse, "invalid value for header #{name}: #{item.inspect}" if item.match?(BAD_HEADER_VALUE)

        head << CRLF << name << ': ' << (item.ascii_only? || item.encoding == BINARY ? item : item.b)
      end
    end

    # A String status ("200", "404 Not Found") or anything else: the status line, or an error.
    def status_line(status)
      text = status.to_s
      if text.match?(/\A\d{3}\z/) && text.to_i >= 100
        @code = text.to_i
        return +@lines[@code]
      end
      if text.match?(/\A\d{3} [^\x00-\x1f\x7f]*\z/) && text.to_i >= 100
        @code = text.to_i
        return "#{@protocol} #{text}".b
      end
      raise InvalidResponse, "invalid status #{status.inspect} (expected an Integer such as 200)"
    end

    # Decide the framing and send the head, with `parts` (known to total `known` bytes) when
    # given. known = nil: the length is unknown (streamed body).
    def commit_parts(parts, known)
      code = @code
      head = @head
      if code < 200 || code == 204 || code == 304
        mode = MODE_NONE # never a body, so no framing header either
      elsif @content_length
        mode = MODE_LENGTH
        @remaining = @content_length
      elsif @app_framed
        mode = MODE_RAW # the app set Transfer-Encoding itself: its framing, not ours
      elsif known
        head << "\r\nContent-Length: #{known}"
        mode = MODE_LENGTH
        @remaining = known
      elsif @is_head
        mode = MODE_NONE
      elsif @persistent
        head << "\r\nTransfer-Encoding: chunked"
        mode = MODE_CHUNKED
      else
        mode = MODE_RAW # plain uwsgi: closing the connection ends the body
      end
      mode = MODE_NONE if @is_head # HEAD: the headers a GET would get, no body bytes
      @mode = mode
      @headers_sent = true
      head << "\r\n\r\n"
      if parts.nil? || parts.empty? || mode == MODE_NONE
        send_data(head)
      elsif mode == MODE_LENGTH
        if parts.size == 1 && (chunk = parts[0]).bytesize <= @remaining && chunk.bytesize <= SMALL_BODY
          # The common case: a small body copied behind the head, one string to write.
          @remaining -= chunk.bytesize
          send_data(head << (chunk.ascii_only? || chunk.encoding == BINARY ? chunk : chunk.b))
        else
          out = [head]
          parts.each { |part| out << clip(part) if @remaining.positive? }
          send_parts(out)
        end
      elsif mode == MODE_CHUNKED
        out = [head]
        parts.each { |part| out << "#{part.bytesize.to_s(16)}\r\n" << part << CRLF unless part.empty? }
        send_parts(out)
      else
        send_parts([head, *parts])
      end
    end

    # One body chunk.
    def write(data)
      return if data.empty?

      unless @headers_sent
        # The first chunk of a streamed body: in the same write as the head.
        commit_parts([data], nil)
        return
      end
      case @mode
      when MODE_CHUNKED
        send_parts(["#{data.bytesize.to_s(16)}\r\n", data, CRLF])
      when MODE_LENGTH
        send_data(clip(data)) if @remaining.positive?
      when MODE_RAW
        send_data(data)
      end
    end

    def send_file(path)
      File.open(path, 'rb') do |file|
        size = file.size
        commit_parts(nil, size)
        count = case @mode
                when MODE_NONE then 0
                when MODE_LENGTH then [size, @remaining].min
                else size
                end
        @remaining -= count if @mode == MODE_LENGTH
        if count.positive?
          sent = begin
            IO.copy_stream(file, @sock, count, 0)
          rescue IOError, SystemCallError
            @disconnected = true
            raise
          end
          @remaining += count - sent if @mode == MODE_LENGTH && sent < count
        end
      end
    end

    # End the response. True when the connection can carry another request.
    def finish
      commit_parts(nil, 0) unless @headers_sent
      if @mode == MODE_CHUNKED
        send_data(LAST_CHUNK)
      elsif @mode == MODE_LENGTH && @remaining.positive?
        TsuwsgiRack.log("response shorter than its Content-Length (#{@remaining} bytes missing): closing the connection")
        return false
      end
      true
    end

    # Replace the response not yet sent with a 500 (§3.3).
    def send_error(text)
      body = text.b
      head = "#{@protocol} 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: #{body.bytesize}\r\n\r\n"
      @headers_sent = true
      send_data(@is_head ? head : head + body)
    end

    private

    def clip(data)
      if data.bytesize > @remaining
        data = data.byteslice(0, @remaining)
      end
      @remaining -= data.bytesize
      data
    end

    # Write one string, after any held-back responses (or hold it back too when deferred).
    def send_data(data)
      if @defer
        @outbox << data
      elsif @outbox.empty?
        @sock.write(data)
      else
        @outbox << data
        @sock.write(*@outbox)
        @outbox.clear
      end
    rescue IOError, SystemCallError
      @disconnected = true
      raise
    end

    # Write several strings in one writev.
    def send_parts(parts)
      if @defer
        @outbox.concat(parts)
      elsif @outbox.empty?
        @sock.write(*parts)
      else
        @outbox.concat(parts)
        @sock.write(*@outbox)
        @outbox.clear
      end
    rescue IOError, SystemCallError
      @disconnected = true
      raise
    end
  end

  # ------------------------------------------------------------------------------------------
  # The bridge process
  # ------------------------------------------------------------------------------------------

  class Bridge
    attr_reader :pid, :worker_id, :threads, :processes, :listener, :wake_read, :state_lock,
                :base_env, :hostname, :catch_exceptions, :memory_body_limit, :workers, :config,
                :gc_freq
    attr_accessor :stopping

    def initialize(config)
      plugin = config['plugin'] || {}
      @config = config
      @pid = Process.pid
      @worker_id = (config['workerId'] || 1).to_i
      @threads = [(config['threads'] || 1).to_i, 1].max
      @processes = [(config['processes'] || 1).to_i, 1].max
      @backlog = (config['listenBacklog'] || 100).to_i
      @catch_exceptions = plugin['catchExceptions'] ? true : false
      @gc_freq = plugin['gcFreq'].to_i
      @gc_count = 0
      post_buffering = plugin['postBuffering'].to_i
      @memory_body_limit = post_buffering.positive? ? post_buffering : DEFAULT_MEMORY_BODY_LIMIT
      @hostname = (config['hostname'] || Socket.gethostname).to_s.b.freeze
      @control_fd = (ENV['TSUWSGI_CONTROL_FD'] || 4).to_i
      @listen_fd = (ENV['TSUWSGI_LISTEN_FD'] || 3).to_i
      @control_lock = Mutex.new
      @state_lock = Mutex.new
      @stopping = false
      @stop_thread = nil
      @wake_read, @wake_write = IO.pipe
      @workers = []
      @apps = []
      @apps_by_mountpoint = {}
      @default_app = nil
      @exit_queue = Queue.new
      @base_env = {
        'SCRIPT_NAME' => '',
        'QUERY_STRING' => '',
        'SERVER_NAME' => @hostname,
        'SERVER_PORT' => '80',
        'rack.version' => [1, 3].freeze,
        'rack.errors' => $stderr,
        'rack.multithread' => @threads > 1,
        'rack.multiprocess' => @processes > 1,
        'rack.run_once' => false,
        # Hijacking needs the client's socket; the bridge only has the core's (docs/rack.md).
        'rack.hijack?' => false,
        'uwsgi.version' => (config['version'] || '').to_s.b.freeze,
        'uwsgi.node' => @hostname
      }
    end

    # -- control channel (§4) --------------------------------------------------------------------

    def open_control
      @control_in = IO.for_fd(@control_fd, 'r', autoclose: false)
      @control_out = IO.for_fd(@control_fd, 'w', autoclose: false)
      @control_out.sync = true
    end

    def send_event(message)
      line = "#{JSON.generate(message)}\n"
      @control_lock.synchronize { @control_out.write(line) }
      true
    rescue IOError, SystemCallError
      false # the core is gone; EOF on the read side will end us
    end

    # Read commands until EOF, which means the core died: exit at once (§1).
    def control_loop
      while (line = @control_in.gets)
        handle_command(line) unless line.strip.empty?
      end
      TsuwsgiRack.hard_exit(0)
    rescue IOError, SystemCallError
      TsuwsgiRack.hard_exit(0)
    end

    def handle_command(line)
      command = JSON.parse(line)
      return unless command.is_a?(Hash)

      case command['cmd']
      when 'stop'
        command['graceful'] ? start_graceful_stop : TsuwsgiRack.hard_exit(0)
      when 'stack'
        dump_stacks
      else
        TsuwsgiRack.log("ruby bridge: unknown control command #{command['cmd'].inspect}")
      end
    rescue JSON::ParserError
      TsuwsgiRack.log("ruby bridge: invalid control message #{line[0, 200].inspect}")
    end

    def start_graceful_stop
      @stop_thread ||= Thread.new { graceful_stop }
    end

    # Stop accepting, wake idle persistent connections, let busy threads finish, exit 0.
    def graceful_stop
      idle = @state_lock.synchronize do
        @stopping = true
        @workers.map(&:idle_sock).compact
      end
      idle.each do |sock|
        # Only the read side: a request already queued is still read and answered.
        sock.shutdown(Socket::SHUT_RD)
      rescue IOError, SystemCallError
        nil
      end
      begin
        @wake_write.write('x') # never read: every select() on it returns at once
      rescue IOError, SystemCallError
        nil
      end
      @workers.each { |w| w.thread&.join }
      # The main thread exits normally, so the app's at_exit handlers run.
      @exit_queue << 0
    end

    def wait_for_exit
      status = @exit_queue.pop
      $stdout.flush
      $stderr.flush
      exit(status)
    end

    def dump_stacks
      lines = ["*** ruby bridge stack dump (pid #{@pid}, worker #{@worker_id}) ***"]
      Thread.list.each do |t|
        lines << "thread #{t.name || t.object_id} (#{t.status || 'dead'}):"
        (t.backtrace || []).each { |frame| lines << "  #{frame}" }
      end
      lines << '*** end of the stack dump ***'
      TsuwsgiRack.log(lines.join("\n"))
    end

    # -- apps (§3.2) -------------------------------------------------------------------------

    def add_app(app_id, mountpoint, app)
      if @apps_by_mountpoint.key?(mountpoint)
        TsuwsgiRack.log("ruby bridge: mountpoint #{mountpoint.inspect} is already taken, app ignored")
        return
      end
      @apps << [app_id, mountpoint, app]
      @apps_by_mountpoint[mountpoint] = app
      @default_app = @apps_by_mountpoint.fetch('', @apps[0][2])
    end

    # UWSGI_APPID, else SCRIPT_NAME, else the default app (uWSGI's rule).
    def select_app(env)
      return @default_app if @apps.size == 1

      apps = @apps_by_mountpoint
      id = env['UWSGI_APPID']
      return apps[id] if id && apps.key?(id)

      script_name = env['SCRIPT_NAME']
      return apps[script_name] if script_name && apps.key?(script_name)

      @default_app
    end

    def single_app
      @apps.size == 1 ? @default_app : nil
    end

    def after_request
      @gc_count += 1
      GC.start if (@gc_count % @gc_freq).zero?
    end

    def total_requests
      @workers.sum(&:requests)
    end

    # -- start-up ----------------------------------------------------------------------------

    def setup_ruby
      plugin = @config['plugin'] || {}
      (plugin['rbLib'] || []).reverse_each { |dir| $LOAD_PATH.unshift(dir) }
      $stdout.sync = true # what the app prints reaches the log promptly
      $stderr.sync = true
    end

    # §2.1: requires, then every app. Raises AppLoadError with app_id set.
    def load
      plugin = @config['plugin'] || {}
      current_id = 0
      ((plugin['sharedRbRequire'] || []) + (plugin['rbRequire'] || [])).each do |feature|
        require feature
      rescue Exception => e # rubocop:disable Lint/RescueException
        err = AppLoadError.new("unable to require #{feature}: #{TsuwsgiRack.one_line(e)}")
        err.details = TsuwsgiRack.describe(e)
        err.app_id = 0
        raise err
      end
      (@config['apps'] || []).each_with_index do |spec, i|
        current_id = spec['id'] || i
        load_spec = spec['load'] || {}
        kind = load_spec['kind']
        target = load_spec['target'].to_s
        unless kind == 'rackup'
          raise AppLoadError, "unknown app kind #{kind.inspect} for #{target.inspect} (the rack plugin loads rackup files)"
        end

        begin
          app, how = TsuwsgiRack.load_rackup(target)
        rescue AppLoadError
          raise
        rescue Exception => e # rubocop:disable Lint/RescueException
          err = AppLoadError.new("unable to load rackup file #{target}: #{TsuwsgiRack.one_line(e)}")
          err.details = TsuwsgiRack.describe(e)
          raise err
        end
        unless app.respond_to?(:call)
          raise AppLoadError, "the rackup file #{target} did not produce a Rack app (got #{app.inspect[0, 100]}, which does not respond to call)"
        end

        add_app(current_id, (spec['mountpoint'] || '').to_s.b.freeze, app)
        TsuwsgiRack.log("RACK app #{current_id} loaded from #{target} with #{how} (GC frequency: #{@gc_freq.positive? ? @gc_freq : 'Ruby default'})") if @worker_id == 1
      end
      raise AppLoadError, 'no app to load (the configuration lists none)' if @apps.empty?
    rescue AppLoadError => e
      e.app_id ||= current_id
      raise
    end

    # §2.3: listen, start the threads, tell the core we are ready.
    def start
      @listener = UNIXServer.for_fd(@listen_fd)
      @listener.listen(@backlog)
      @base_env['rack.version'] = ::Rack::VERSION if defined?(::Rack::VERSION) && ::Rack::VERSION.is_a?(Array)
      @base_env.freeze
      @threads.times { |i| @workers << Worker.new(self, i) }
      @workers.each(&:start)
      send_event({
                   event: 'ready', pid: @pid, runtime: RUBY_ENGINE == 'ruby' ? 'CRuby' : RUBY_ENGINE,
                   runtimeVersion: RUBY_VERSION, bridgeApi: BRIDGE_API, threads: @threads,
                   apps: @apps.map { |id, mountpoint, _| { id: id, mountpoint: mountpoint } }
                 })
    end
  end

  def self.main
    # Ctrl-C in a terminal signals the whole process group: the core decides how we stop.
    trap('INT', 'IGNORE')
    # Check the inherited descriptors before opening anything, so a missing fd 4 is not
    # replaced by one of our own files.
    [['TSUWSGI_LISTEN_FD', 3, 'pool socket'], ['TSUWSGI_CONTROL_FD', 4, 'control channel']].each do |var, default, what|
      fd = (ENV[var] || default).to_i
      begin
        IO.for_fd(fd, autoclose: false).stat
      rescue SystemCallError, ArgumentError
        log("ruby bridge: fd #{fd} (the #{what}) is not open; this script is started by tsuwsgi (see docs/bridge-protocol.md)")
        hard_exit(1)
      end
    end

    config = JSON.parse(ENV['TSUWSGI_BRIDGE_CONFIG'] || '{}')
    bridge = Bridge.new(config)
    bridge.open_control
    Thread.new { bridge.control_loop }
    bridge.setup_ruby
    require_relative 'uwsgi'
    UWSGI.__setup(bridge, config)

    begin
      bridge.load
    rescue AppLoadError => e
      details = e.details || TsuwsgiRack.describe(e)
      log(details)
      log(e.message) unless details.include?(e.message)
      bridge.send_event({ event: 'load-failed', app: e.app_id || 0, message: e.message, details: details })
      hard_exit(UWSGI_FAILED_APP_CODE)
    end

    if UWSGI.respond_to?(:post_fork_hook)
      begin
        UWSGI.post_fork_hook
      rescue Exception => e # rubocop:disable Lint/RescueException
        log("ruby bridge: UWSGI.post_fork_hook failed:\n#{describe(e)}")
      end
    end
    bridge.start
    bridge.wait_for_exit
  end
end

TsuwsgiRack.main if $PROGRAM_NAME == __FILE__
