namespace IsoTest;

/// <summary>Which backend runs containers. Chosen by DI (<c>AddIsoTest</c>) or the <c>ISOTEST_BACKEND</c> environment variable.</summary>
public enum BackendKind
{
    /// <summary>The built-in engine on Linux where it can run, else Docker.</summary>
    Auto,

    /// <summary>The built-in Linux engine (namespaces and cgroups, no daemon).</summary>
    Engine,

    /// <summary>A Docker Engine, local or at <c>DOCKER_HOST</c>.</summary>
    Docker,
}
