// swift-tools-version:6.0
import PackageDescription
import Foundation

/// The numeric kernels use `SIMD16<Float>`; without a CPU flag swiftc targets baseline x86-64 and those loops run
/// ~200x slower (see TOOLCHAIN.md). The root package therefore builds for the host CPU. Set `CONVLAB_PORTABLE=1`
/// to build without unsafe flags (a plain x86-64 binary, or when convlab is consumed as a dependency).
let portable = ProcessInfo.processInfo.environment["CONVLAB_PORTABLE"] == "1"
let hostCPU: [SwiftSetting] = portable ? [] : [.unsafeFlags(["-target-cpu", "native"])]

let package = Package(
    name: "convlab",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ConvLab", targets: ["ConvLab"]),
        .executable(name: "convlab", targets: ["convlab"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3f", providers: [.apt(["libfftw3-dev"])]),
        .target(
            name: "ConvLab",
            dependencies: ["CBLAS", "CFFTW"],
            swiftSettings: hostCPU + [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "convlab",
            dependencies: ["ConvLab", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: hostCPU
        ),
        .testTarget(name: "ConvLabTests", dependencies: ["ConvLab"], swiftSettings: hostCPU),
    ]
)
