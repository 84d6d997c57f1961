namespace IsoTest.Modules;

/// <summary>Where a module's server comes from: its image by default, or an image, the host's installed programs, or a directory.</summary>
internal enum ModuleRootKind
{
    /// <summary>The module's image (<see cref="ModuleImage.Current"/>) on either backend, as Testcontainers' modules do.</summary>
    Auto,

    /// <summary>The host's installed programs (<see cref="ContainerBuilder.FromHost"/>): the built-in engine only.</summary>
    Host,

    /// <summary>An image the module was given (<c>WithImage</c>).</summary>
    Image,

    /// <summary>A directory holding a root filesystem with the server's programs at the host's paths (<see cref="ContainerBuilder.FromDirectory"/>).</summary>
    Directory,
}

/// <summary>
/// A module's image: the default (the official one a registry serves), the variable that replaces it where no registry
/// does, and the words that say so when the image cannot be had. Linked into each module package.
/// </summary>
/// <param name="Server">The server's name in messages (<c>PostgreSQL</c>).</param>
/// <param name="Default">The image run when neither <c>WithImage</c> nor <paramref name="Variable"/> names another.</param>
/// <param name="Variable">The environment variable naming the image to run instead of <paramref name="Default"/>.</param>
/// <param name="Programs">What <c>FromHost()</c> runs instead (<c>the host's installed PostgreSQL</c>).</param>
internal sealed record ModuleImage(string Server, string Default, string Variable, string Programs)
{
    /// <summary>The image the module runs by default: <see cref="Variable"/>'s value, else <see cref="Default"/>.</summary>
    public string Current => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } image ? image : Default;

    /// <summary>What to do when <paramref name="image"/> (<paramref name="given"/>: from <c>WithImage</c>) is neither stored nor pullable.</summary>
    public string Hint(string image, bool given)
    {
        var source = given ? "given with WithImage"
            : Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } ? $"named by {Variable}"
            : "its default";
        return $"The {Server} module runs the image {image} ({source}). Where no registry serves it: point {Variable} at an image " +
            $"this machine has (or call WithImage), load one into the engine's store (isotest load -i ARCHIVE, " +
            $"EngineBackend.LoadImagesAsync), or run {Programs} with FromHost() (the built-in engine only).";
    }
}

/// <summary>
/// A module's choice of root filesystem, shared by every module (linked into each package). An image runs with the
/// image's own conventions; the host and directory forms run the programs at the host's paths.
/// </summary>
internal readonly record struct ModuleRoot(ModuleRootKind Kind, string? Value)
{
    /// <summary>The root this choice stands for: <see cref="ModuleRootKind.Auto"/> becomes the module's current image.</summary>
    public ModuleRoot Resolve(ModuleImage image) => Kind == ModuleRootKind.Auto ? new(ModuleRootKind.Image, image.Current) : this;

    /// <summary>Whether this choice runs an image (else programs at the host's paths).</summary>
    public bool IsImage => Kind is ModuleRootKind.Image or ModuleRootKind.Auto;

    /// <summary>
    /// The root filesystem on <paramref name="builder"/>, and the backend the module was given with its <c>WithBackend</c>
    /// (<paramref name="chosen"/>) when it was one. An image carries the hint that names the module's other roots.
    /// </summary>
    public ContainerBuilder Apply(ContainerBuilder builder, IContainerBackend? chosen, ModuleImage image)
    {
        var root = Resolve(image);
        var rooted = root.Kind switch
        {
            ModuleRootKind.Host => builder.FromHost(),
            ModuleRootKind.Directory => builder.FromDirectory(root.Value!),
            _ => builder.FromImage(root.Value!).WithImageHint(image.Hint(root.Value!, given: Kind == ModuleRootKind.Image)),
        };
        return chosen is null ? rooted : rooted.WithBackend(chosen);
    }

    /// <summary>By name: the Docker backend may live in its own package, and a module must not need it.</summary>
    public static bool IsDocker(IContainerBackend backend) => string.Equals(backend.Name, "docker", StringComparison.Ordinal);
}
