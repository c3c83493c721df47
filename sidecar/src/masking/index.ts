export * from './classes.js';
export { classifyByName, isPersonTable, nameTokens, typeCanHold, type NameClassification, type NameInput } from './detect-name.js';
export { detectContent, detectContentBits, sampleClassify, type SampleClassification, type SampleOptions } from './detect-content.js';
export { fixedMaskValue, formatUuid, maskValue, type MaskColumn } from './masks.js';
export { EMAIL_LOCAL_MASK, emailText, maskText, partialText, REDACTED } from './text-masks.js';
export { bpcharLength, TypeOid, typeCategory, typeNameOf, type TypeCategory } from './pg-types.js';
export * from './plan.js';
export { rewriteDataRow, rewriteDataRowTo, type FrameSink } from './rewrite.js';
export {
  BINARY_COPY_SIGNATURE,
  escapeCopyText,
  maskCopyBinaryRow,
  maskCopyCsvRow,
  maskCopyTextRow,
  unescapeCopyText,
  type CopyCsvOptions,
  type CopyTextOptions,
} from './copy.js';
