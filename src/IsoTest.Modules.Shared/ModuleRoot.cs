namespace IsoTest.Modules;

/// <summary>Where a module's server comes from: picked by backend, an image, the host's installed programs, or a directory.</summary>
internal enum ModuleRootKind
{
    /// <summary>An image on Docker; the host's programs on the built-in engine (it runs what is installed, no image needed).</summary>
    Auto,

    /// <summary>The host's installed programs (<see cref="ContainerBuilder.FromHost"/>): the built-in engine only.</summary>
    Host,

    /// <summary>An image (<see cref="ContainerBuilder.FromImage"/>).</summary>
    Image,

    /// <summary>A directory holding a root filesystem with the server's programs at the host's paths (<see cref="ContainerBuilder.FromDirectory"/>).</summary>
    Directory,
}

/// <summary>
/// A module's choice of root filesystem, shared by every module (linked into each package). The image form runs the
/// image's own entrypoint and conventions; the host and directory forms run the programs at the host's paths.
/// </summary>
internal readonly record struct ModuleRoot(ModuleRootKind Kind, string? Value)
{
    /// <summary>Whether this choice, on <paramref name="backend"/>, runs an image (else programs at the host's paths).</summary>
    public bool IsImage(IContainerBackend backend) => Kind == ModuleRootKind.Image || (Kind == ModuleRootKind.Auto && IsDocker(backend));

    /// <summary>
    /// The root filesystem on <paramref name="builder"/> for the backend the module was given with its
    /// <c>WithBackend</c> (<paramref name="chosen"/>, which the builder then gets too) or, when none was, the default one.
    /// </summary>
    public ContainerBuilder Apply(ContainerBuilder builder, IContainerBackend? chosen, string defaultImage)
    {
        var rooted = Kind switch
        {
            ModuleRootKind.Host => builder.FromHost(),
            ModuleRootKind.Image => builder.FromImage(Value!),
            ModuleRootKind.Directory => builder.FromDirectory(Value!),
            _ => IsDocker(chosen ?? ContainerBackends.Default) ? builder.FromImage(defaultImage) : builder.FromHost(),
        };
        return chosen is null ? rooted : rooted.WithBackend(chosen);
    }

    // By name: the Docker backend may live in its own package, and a module must not need it.
    private static bool IsDocker(IContainerBackend backend) => string.Equals(backend.Name, "docker", StringComparison.Ordinal);
}
