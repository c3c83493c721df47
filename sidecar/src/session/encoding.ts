import { TextDecoder } from 'node:util';

/**
 * Decoding query text exactly as the server will read it. PostgreSQL converts what the client
 * sends from `client_encoding` to the server encoding before it parses; the sidecar must analyse
 * the same characters, or a multibyte encoding whose trailing bytes look like `\` or `'`
 * (Shift-JIS, Big5, GBK...) would let the sidecar and the server disagree on where a string ends.
 */

/** PostgreSQL client encoding names → WHATWG labels understood by TextDecoder. */
const LABELS: Record<string, string> = {
  UTF8: 'utf-8',
  UNICODE: 'utf-8',
  LATIN1: 'iso-8859-1',
  LATIN2: 'iso-8859-2',
  LATIN3: 'iso-8859-3',
  LATIN4: 'iso-8859-4',
  LATIN5: 'iso-8859-9',
  LATIN6: 'iso-8859-10',
  LATIN7: 'iso-8859-13',
  LATIN8: 'iso-8859-14',
  LATIN9: 'iso-8859-15',
  LATIN10: 'iso-8859-16',
  ISO_8859_5: 'iso-8859-5',
  ISO_8859_6: 'iso-8859-6',
  ISO_8859_7: 'iso-8859-7',
  ISO_8859_8: 'iso-8859-8',
  WIN866: 'ibm866',
  WIN874: 'windows-874',
  WIN1250: 'windows-1250',
  WIN1251: 'windows-1251',
  WIN1252: 'windows-1252',
  WIN1253: 'windows-1253',
  WIN1254: 'windows-1254',
  WIN1255: 'windows-1255',
  WIN1256: 'windows-1256',
  WIN1257: 'windows-1257',
  WIN1258: 'windows-1258',
  KOI8R: 'koi8-r',
  KOI8U: 'koi8-u',
  SJIS: 'shift_jis',
  SHIFT_JIS_2004: 'shift_jis',
  EUC_JP: 'euc-jp',
  EUC_KR: 'euc-kr',
  EUC_CN: 'gb18030',
  GBK: 'gbk',
  GB18030: 'gb18030',
  BIG5: 'big5',
  UHC: 'euc-kr',
};

/** Query text could not be decoded in the session's client_encoding: treat it as unparseable. */
export class UndecodableText extends Error {
  override readonly name = 'UndecodableText';
}

const decoders = new Map<string, TextDecoder>();

function decoderFor(encoding: string): TextDecoder | undefined {
  const normalised = encoding.toUpperCase().replace(/[-\s]/g, '_').replace(/^UTF_8$/, 'UTF8');
  if (normalised === 'SQL_ASCII') return decoderFor('LATIN1'); // bytes as they are, one per character
  const label = LABELS[normalised];
  if (label === undefined) return undefined;
  let decoder = decoders.get(label);
  if (decoder === undefined) {
    try {
      decoder = new TextDecoder(label, { fatal: true });
    } catch {
      return undefined; // this Node build lacks the encoding
    }
    decoders.set(label, decoder);
  }
  return decoder;
}

/** True when text in this encoding is decoded by the codec's UTF-8 path already. */
export function isUtf8(encoding: string): boolean {
  const e = encoding.toUpperCase();
  return e === 'UTF8' || e === 'UTF-8' || e === 'UNICODE';
}

/**
 * Decodes `bytes` as the server will. Throws {@link UndecodableText} for an encoding the sidecar
 * cannot decode or bytes invalid in it (the server would reject those too).
 */
export function decodeClientText(bytes: Uint8Array, encoding: string): string {
  const decoder = decoderFor(encoding);
  if (decoder === undefined) throw new UndecodableText(`client_encoding ${encoding} is not supported by the sidecar's SQL analysis`);
  try {
    return decoder.decode(bytes);
  } catch (cause) {
    throw new UndecodableText(`query text is not valid ${encoding}`, { cause });
  }
}
