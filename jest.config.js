// Jest runs TypeScript through ts-jest in ESM mode (the code base is ESM: import.meta.url
// locates bridges and examples). Integration tests start real tsuwsgi processes, so they
// run serially per file but files run in parallel on the 2 available cores.
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, diagnostics: false }],
  },
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testTimeout: 60000,
  maxWorkers: 2,
};
