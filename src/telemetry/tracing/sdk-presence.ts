// Whether an OpenTelemetry SDK is behind the API's global tracer provider right now. Without
// one, every span the default tracer starts is a non-recording no-op: the run span can be skipped
// altogether, which keeps tracing nearly free for a library whose users may never install an SDK.
// Asked on every call, so an SDK registered after `watch()` is picked up at once.

import { ProxyTracerProvider, trace } from '@opentelemetry/api'

/** The no-op provider an empty proxy delegates to (a singleton of the API). */
const NO_SDK = new ProxyTracerProvider().getDelegate()

/** True when the global provider delegates to something other than the API's no-op (or is not the API's proxy at all). */
export function globalSdkRegistered(): boolean {
  const provider = trace.getTracerProvider()
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NO_SDK
}
