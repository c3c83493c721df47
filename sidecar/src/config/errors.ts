/** Bad configuration: reported as one line naming the flag, exit status 2 (SPEC §2). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    /** The flag at fault, e.g. `--upstream`. */
    readonly flag: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${flag}: ${message}`, options);
  }
}
