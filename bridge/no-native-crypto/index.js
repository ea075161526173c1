throw new Error('@matrix-org/matrix-sdk-crypto-nodejs is not installed: the GChat bridge uses @matrix-org/matrix-sdk-crypto-wasm');
