/**
 * @hearth/sdk: the Hearth client. See sdk/README.md.
 *
 * The SDK imports no server code (workers/, durable-objects/); wire types it shares with the
 * server come from shared/ only.
 */
export const SDK_VERSION = "0.1.0";
