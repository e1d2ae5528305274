// The value conversions moved to shared/ (the SDK and the filter evaluator use them too).
export * from "../shared/values.ts";
