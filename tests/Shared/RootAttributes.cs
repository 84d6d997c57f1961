using Xunit;

namespace IsoTest.TestSupport;

/// <summary>A fact about what only root has (e.g. the network namespace pool); skipped, saying why, when not root.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RootOnlyFactAttribute : FactAttribute
{
    internal static bool IsRoot => Environment.UserName == "root";

    /// <param name="reason">Why it needs root; by default the network namespace pool's reason.</param>
    public RootOnlyFactAttribute(string? reason = null)
    {
        if (!RootOnlyFactAttribute.IsRoot)
        {
            Skip = "Needs root: " + (reason ?? "rootless, a container's network namespace must belong to its own user namespace, which exists only once the container does, so there is no pool to test.");
        }
    }
}

/// <summary>A fact about rootless containers; skipped, saying why, as root.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RootlessOnlyFactAttribute : FactAttribute
{
    public RootlessOnlyFactAttribute()
    {
        if (RootOnlyFactAttribute.IsRoot)
        {
            Skip = "Rootless only: run the tests as a non-root user (see the rootless job in .ci/run).";
        }
    }
}
