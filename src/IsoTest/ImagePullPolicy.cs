namespace IsoTest;

/// <summary>When an image named by <c>FromImage</c> is pulled; the same policy on every backend.</summary>
public enum ImagePullPolicy
{
    /// <summary>Pull only when the image is not in the local store (the daemon's or the engine's; Docker's <c>--pull missing</c>, the default).</summary>
    Missing,

    /// <summary>Pull before every container, so a moving tag is always fresh (<c>--pull always</c>).</summary>
    Always,

    /// <summary>Never pull: a missing image is an <see cref="ImagePullException"/> (<c>--pull never</c>, for offline machines).</summary>
    Never,
}
