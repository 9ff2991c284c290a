# frozen_string_literal: true
#
# The `UWSGI` module that Rack apps see when they run under tsuwsgi.
#
# uWSGI's rack plugin defines this module inside the server, so `defined?(UWSGI)` is how apps
# detect it. tsuwsgi's Ruby bridge loads this file before it loads any app.
#
# Only the part of the API that one bridge process can honour on its own is here. Anything
# else (cache, spooler, signals, RPC, mules, locks...) is deliberately absent, so
# `UWSGI.respond_to?(:cache_get)` tells the truth, as it does on a uWSGI built without that
# feature. Names follow uWSGI's Ruby API (spec/languages.md §7.5): constants for the static
# values (UWSGI::OPT, UWSGI::VERSION, UWSGI::NUMPROC, UWSGI::HOSTNAME, UWSGI::PIDFILE).
#
# Apps may define a hook, called once in each bridge process after the apps loaded:
#   def UWSGI.post_fork_hook; ...; end
module UWSGI
  # Spooler return codes, as uWSGI defines them (code shared with uWSGI deployments refers to
  # them even when it never spools).
  SPOOL_OK = -2
  SPOOL_RETRY = -1
  SPOOL_IGNORE = 0

  @bridge = nil
  @worker_id = 0
  @masterpid = 0

  class << self
    # Called once by the bridge, before any app is loaded.
    def __setup(bridge, config)
      @bridge = bridge
      @worker_id = (config['workerId'] || 1).to_i
      @masterpid = (config['masterPid'] || 0).to_i
      const_set(:VERSION, (config['version'] || '2.0.28-tsuwsgi').to_s.freeze)
      const_set(:HOSTNAME, (config['hostname'] || '').to_s.freeze)
      const_set(:NUMPROC, (config['processes'] || 1).to_i)
      const_set(:OPT, options_as_uwsgi_does(config['options'] || {}))
      pidfile = (config['options'] || {})['pidfile']
      const_set(:PIDFILE, pidfile.to_s.freeze) if pidfile.is_a?(String)
    end

    def worker_id
      @worker_id
    end

    def masterpid
      @masterpid
    end

    # Bridges only run workers; mules are not served by this process.
    def mule_id
      0
    end

    # Requests completed by the current thread (uWSGI's per-core counter).
    def request_id
      worker = Thread.current[:tsuwsgi_worker]
      worker ? worker.requests : 0
    end

    # Requests completed by this process.
    def total_requests
      @bridge ? @bridge.total_requests : 0
    end

    # One line in the server log.
    def log(message)
      $stderr.write("#{message}\n")
      true
    end

    # [rss, vsz] of this process in bytes, as uWSGI's UWSGI.mem.
    def mem
      pages = File.read('/proc/self/statm').split.map(&:to_i)
      page = 4096
      [pages[1] * page, pages[0] * page]
    end

    # Set the process title (what ps shows).
    def setprocname(name)
      Process.setproctitle(name.to_s)
      true
    end

    # Ask the server to reload the workers gracefully.
    def reload
      @bridge&.send_event({ event: 'reload' })
      true
    end

    # Ask the server to shut down.
    def stop
      @bridge&.send_event({ event: 'stop' })
      true
    end

    private

    # Single values as strings, repeated options as arrays, flags as true (uWSGI's UWSGI::OPT).
    def options_as_uwsgi_does(options)
      options.each_with_object({}) do |(name, value), out|
        next if value.nil? || value == false

        out[name.to_s.freeze] = case value
                                when true then true
                                when Array then value.map { |v| v.to_s.freeze }.freeze
                                else value.to_s.freeze
                                end
      end.freeze
    end
  end
end
