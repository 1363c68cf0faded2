// The umbrella module: `import ConvLab` brings every layer of the library, as swift-numerics' `Numerics` does for its
// modules. It holds no code; Package.swift shows the layers and their order.
@_exported import ConvLabCore
@_exported import ConvLabMatMul
@_exported import ConvLabBackends
@_exported import ConvLabAccuracy
@_exported import ConvLabBenchmark
@_exported import ConvLabSelection
@_exported import ConvLabStudies
@_exported import ConvLabNetworks
