namespace IsoTest;

/// <summary>What a pull is doing with one part of an image.</summary>
public enum ImagePullPhase
{
    /// <summary>The manifest (or index) was resolved; <see cref="ImagePullProgress.Layer"/> is the manifest digest.</summary>
    Resolved,

    /// <summary>The layer is already in the store.</summary>
    AlreadyExists,

    /// <summary>Bytes of the layer are arriving.</summary>
    Downloading,

    /// <summary>The layer was downloaded and its digest verified.</summary>
    Downloaded,

    /// <summary>The layer is being unpacked.</summary>
    Extracting,

    /// <summary>The layer is unpacked and ready to be shared by containers.</summary>
    Complete,
}

/// <summary>Progress of a pull, reported per layer (through <see cref="IProgress{T}"/>).</summary>
/// <param name="Image">The normalised image reference.</param>
/// <param name="Layer">The layer's (compressed) digest, or the manifest's for <see cref="ImagePullPhase.Resolved"/>.</param>
/// <param name="Phase">What is happening.</param>
/// <param name="Current">Bytes done so far (downloads).</param>
/// <param name="Total">The layer's size in bytes, when known.</param>
public sealed record ImagePullProgress(string Image, string Layer, ImagePullPhase Phase, long Current = 0, long? Total = null);
