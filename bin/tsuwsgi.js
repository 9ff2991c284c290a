#!/usr/bin/env node
// tsuwsgi launcher: runs the TypeScript sources directly through tsx (no build step needed
// from a source checkout). A monolithic build (uwsgiconfig.ts --build) replaces this with a
// bundled file.
import { register } from 'tsx/esm/api';

register();
await import('../core/main.ts');
