export type * from './facts.js';
export { analyzeQuery, initSqlAnalysis, isUnparseable, SqlAnalysisNotReadyError, type AnalysisContext } from './analyze.js';
export { FactsCache, type FactsCacheOptions, type FactsCacheStats } from './cache.js';
export { functionSchema } from './names.js';
export { copyOutFormat, type CopyOutFormat } from './copy-options.js';
export { cacheKey, lexQuery, toStandardStrings, type LexedQuery, type LexOptions } from './normalize.js';
export {
  CATALOG_QUERY, CatalogFormatError, catalogRelation, columnByOid, parseCatalogSnapshot,
  type CatalogColumn, type CatalogFunction, type CatalogRelation, type CatalogSnapshot, type RelationKind,
} from './catalog.js';
