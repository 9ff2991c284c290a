/**
 * The core routing module: the core's actions, conditions and route vars, declared like a
 * plugin's so the engine treats them no differently (and a plugin may not shadow them:
 * the first registration of a name wins and this module always comes first).
 */
import { definePlugin, PLUGIN_API_VERSION } from '../plugins/api.ts';
import { CORE_ACTIONS } from './core-actions.ts';
import { CORE_CONDITIONS } from './core-conditions.ts';
import { CORE_VARS } from './core-vars.ts';
import { transformationActions } from '../transform/actions.ts';
import { CORE_TRANSFORMATIONS } from '../transform/core-transformations.ts';

export const CORE_ROUTING = definePlugin({
  name: 'routing',
  apiVersion: PLUGIN_API_VERSION,
  description: 'the core internal routing actions, conditions and route vars',
  // flush, fixcl and forcecl are core transformations in uWSGI (core/transformations.c).
  routeActions: [...CORE_ACTIONS, ...transformationActions(CORE_TRANSFORMATIONS)],
  routeConditions: CORE_CONDITIONS,
  routeVars: CORE_VARS,
});
