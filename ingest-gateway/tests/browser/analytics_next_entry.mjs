// What the analytics-next bundle exposes to the test page, as window.SegmentAnalytics
// (build_bundle.mjs bundles it).
export { AnalyticsBrowser } from '@segment/analytics-next';
