/**
 * What other code (the control plane, the end-to-end tests) composes: start the operator in-process
 * against a kubeconfig, compute or run an injected pod spec, the Kubernetes adapters of ports.ts.
 */
export { startOperator, type OperatorHandle, type OperatorOptions } from './operator.js';
export { inject, injectedPod, CONTROL_PLANE_AUDIENCE, PATHS, SIDECAR_NAME, STATUS_ANNOTATION, type InjectResult, type InjectSettings, type NamespaceInfo } from './webhook/inject.js';
export { localEnv, labelsFile, type LocalEnvOptions } from './webhook/local.js';
export { PolicyController, type Logger } from './controller/controller.js';
export { KubeClient, KubeApiError, loadKubeConfig } from './kube/rest.js';
export { KubeTokenVerifier } from './kube/token-verifier.js';
export { KubePodLookup } from './kube/pod-lookup.js';
export { KubePolicySource } from './kube/policy-source.js';
export { KubeAccessRequestStore } from './kube/access-requests.js';
export { CertManager, type ServingCertificate } from './tls/manager.js';
export { issueCertificate } from './tls/x509.js';
export { generateCrds } from './crd/generate.js';
