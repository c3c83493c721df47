/** Errors raised by the codec. The wire layer never does I/O; the session maps these to 08P01. */
export class WireError extends Error {
  override readonly name: string = 'WireError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A frame or field that violates the protocol: bad length, missing terminator, bad count. */
export class ProtocolViolation extends WireError {
  override readonly name = 'ProtocolViolation';
}

/** A frame longer than the configured maximum. */
export class FrameTooLarge extends WireError {
  override readonly name = 'FrameTooLarge';
  constructor(
    readonly code: number,
    readonly length: number,
    readonly max: number,
  ) {
    super(`message of type 0x${code.toString(16)} is ${length} bytes, above the limit of ${max}`);
  }
}
