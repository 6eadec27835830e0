// What a user can hit throws TopogitError with a stable code and a hint; anything else is a bug.
// The codes are listed in the README.

export type ErrorCode =
  | 'TOPOGIT_CONFIG_INVALID'
  | 'TOPOGIT_CONFIG_NOT_FOUND'
  | 'TOPOGIT_SECRET_MISSING'
  | 'TOPOGIT_UNREACHABLE'
  | 'TOPOGIT_DISCOVERY_FAILED'
  | 'TOPOGIT_UNKNOWN_CLUSTER'
  | 'TOPOGIT_SANDBOX'
  | 'TOPOGIT_NO_SERVER_BINARY'
  | 'TOPOGIT_USAGE'
  | 'TOPOGIT_LOCKED'
  | 'TOPOGIT_COORDINATOR'
  | 'TOPOGIT_STALE_PLAN'
  | 'TOPOGIT_FILE_STALE'
  | 'TOPOGIT_CONFIRMATION_REQUIRED'
  | 'TOPOGIT_SWITCHOVER_REFUSED';

export class TopogitError extends Error {
  override readonly name = 'TopogitError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export function isTopogitError(e: unknown): e is TopogitError {
  return e instanceof TopogitError;
}
