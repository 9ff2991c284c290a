<?php
// Run before every script (php-cgi -d auto_prepend_file=...) by bridges/php/bridge.mjs.
//
// 1. The part of uWSGI's PHP API (spec/languages.md §8.4) that means something here; the
//    values come from -d directives the bridge sets on each php-cgi (get_cfg_var() reads
//    them). uwsgi_cache_*(), uwsgi_rpc() and uwsgi_signal() are not defined: the core has no
//    cache, RPC or signal subsystem yet (docs/php.md).
// 2. $_SERVER['PHP_SELF'] = SCRIPT_NAME as uWSGI sets it (php-cgi appends PATH_INFO).
// 3. The user's own auto_prepend_file (--php-set auto_prepend_file=...), if any.
if (!function_exists('uwsgi_version')) {
    function uwsgi_version() { return (string) get_cfg_var('uwsgi.version'); }
    function uwsgi_worker_id() { return (int) get_cfg_var('uwsgi.worker_id'); }
    function uwsgi_masterpid() { return (int) get_cfg_var('uwsgi.masterpid'); }
}
if (isset($_SERVER['SCRIPT_NAME'])) {
    $_SERVER['PHP_SELF'] = $_SERVER['SCRIPT_NAME'];
}
if (($__uwsgi_user_prepend = get_cfg_var('uwsgi.user_prepend')) !== false && $__uwsgi_user_prepend !== '') {
    unset($__uwsgi_user_prepend);
    require get_cfg_var('uwsgi.user_prepend');
} else {
    unset($__uwsgi_user_prepend);
}
