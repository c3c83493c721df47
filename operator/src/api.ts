/** API group, version and kinds of dbward's custom resources (SPEC §1). */
export const API_GROUP = 'dbward.io';
export const API_VERSION = 'v1alpha1';
export const KINDS = {
  DataAccessPolicy: { plural: 'dataaccesspolicies', shortNames: ['dap'] },
  AccessRequest: { plural: 'accessrequests', shortNames: ['areq'] },
} as const;
