export * from './codes.js';
export * from './errors.js';
export * from './splitter.js';
