using System.Text.Json;
using System.Text.Json.Serialization;

namespace IsoTest.Engine.Images;

/// <summary>The media types of the OCI image spec and Docker's schema 2, which registries serve side by side.</summary>
internal static class MediaTypes
{
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    public const string OciLayerTar = "application/vnd.oci.image.layer.v1.tar";
    public const string OciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string OciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";
    public const string DockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    public const string DockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    /// <summary>What a pull accepts, most specific first (the registry picks one it has).</summary>
    public static readonly string[] Accepted = [OciIndex, DockerManifestList, OciManifest, DockerManifest];

    public static bool IsIndex(string? mediaType) => mediaType is OciIndex or DockerManifestList;

    public static bool IsManifest(string? mediaType) => mediaType is OciManifest or DockerManifest;
}

internal sealed record Platform(
    [property: JsonPropertyName("architecture")] string Architecture,
    [property: JsonPropertyName("os")] string Os,
    [property: JsonPropertyName("variant")] string? Variant = null)
{
    /// <summary>This machine, in the OCI spec's (Go's) names; arm64's variant is v8, as containerd normalises it.</summary>
    public static Platform Host { get; } = new(
        System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
        {
            System.Runtime.InteropServices.Architecture.X64 => "amd64",
            System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
            System.Runtime.InteropServices.Architecture.Arm => "arm",
            System.Runtime.InteropServices.Architecture.X86 => "386",
            System.Runtime.InteropServices.Architecture.S390x => "s390x",
            System.Runtime.InteropServices.Architecture.Ppc64le => "ppc64le",
            System.Runtime.InteropServices.Architecture.RiscV64 => "riscv64",
            var other => other.ToString().ToLowerInvariant(),
        },
        "linux",
        System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? "v8" : null);

    /// <summary>Parses <c>os/arch[/variant]</c> (docker's <c>--platform</c>).</summary>
    public static Platform Parse(string text)
    {
        var parts = text.Split('/');
        return parts.Length is 2 or 3 && parts.All(p => p.Length > 0)
            ? new Platform(parts[1], parts[0], parts.Length == 3 ? parts[2] : null)
            : throw new ArgumentException($"platform '{text}' is not os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8");
    }

    /// <summary>Whether an index entry serves this platform (a missing variant matches any: most indexes omit v8).</summary>
    public bool Matches(Platform? candidate) =>
        candidate is not null && candidate.Os == Os && candidate.Architecture == Architecture
        && (Variant is null || candidate.Variant is null || candidate.Variant == Variant);

    public override string ToString() => $"{Os}/{Architecture}{(Variant is null ? "" : "/" + Variant)}";
}

internal sealed record Descriptor(
    [property: JsonPropertyName("mediaType")] string MediaType,
    [property: JsonPropertyName("digest")] string Digest,
    [property: JsonPropertyName("size")] long Size,
    [property: JsonPropertyName("platform")] Platform? Platform = null,
    [property: JsonPropertyName("annotations")] Dictionary<string, string>? Annotations = null,
    [property: JsonPropertyName("urls")] string[]? Urls = null);

/// <summary>An image manifest (OCI or Docker schema 2) or an index (OCI index, Docker manifest list): one shape covers both.</summary>
internal sealed record ManifestDocument(
    [property: JsonPropertyName("schemaVersion")] int SchemaVersion,
    [property: JsonPropertyName("mediaType")] string? MediaType,
    [property: JsonPropertyName("config")] Descriptor? Config,
    [property: JsonPropertyName("layers")] Descriptor[]? Layers,
    [property: JsonPropertyName("manifests")] Descriptor[]? Manifests)
{
    public bool IsIndex => Manifests is not null && Config is null;

    public static ManifestDocument Parse(ReadOnlySpan<byte> json, string what)
    {
        try
        {
            var document = JsonSerializer.Deserialize(json, OciJson.Default.ManifestDocument)
                ?? throw new JsonException("null");
            if (document.SchemaVersion != 2)
            {
                throw new JsonException($"schemaVersion {document.SchemaVersion} (only schema 2 and OCI are supported; schema 1 was retired by Docker in 2019)");
            }

            if (document.Manifests is null && (document.Config is null || document.Layers is null))
            {
                throw new JsonException("neither an index (manifests) nor a manifest (config and layers)");
            }

            return document;
        }
        catch (JsonException e)
        {
            throw new FormatException($"{what} is not an image manifest: {e.Message}", e);
        }
    }
}

internal sealed record HealthConfig(
    [property: JsonPropertyName("Test")] string[]? Test,
    [property: JsonPropertyName("Interval")] long Interval = 0,
    [property: JsonPropertyName("Timeout")] long Timeout = 0,
    [property: JsonPropertyName("StartPeriod")] long StartPeriod = 0,
    [property: JsonPropertyName("Retries")] int Retries = 0);

/// <summary>The runtime defaults of an image (the config's "config" object; Docker's field names).</summary>
internal sealed record ContainerDefaults(
    [property: JsonPropertyName("User")] string? User = null,
    [property: JsonPropertyName("ExposedPorts")] Dictionary<string, JsonElement>? ExposedPorts = null,
    [property: JsonPropertyName("Env")] string[]? Env = null,
    [property: JsonPropertyName("Entrypoint")] string[]? Entrypoint = null,
    [property: JsonPropertyName("Cmd")] string[]? Cmd = null,
    [property: JsonPropertyName("WorkingDir")] string? WorkingDir = null,
    [property: JsonPropertyName("Labels")] Dictionary<string, string>? Labels = null,
    [property: JsonPropertyName("StopSignal")] string? StopSignal = null,
    [property: JsonPropertyName("Healthcheck")] HealthConfig? Healthcheck = null);

internal sealed record RootFsSection(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("diff_ids")] string[] DiffIds);

internal sealed record ImageConfigDocument(
    [property: JsonPropertyName("architecture")] string? Architecture,
    [property: JsonPropertyName("os")] string? Os,
    [property: JsonPropertyName("variant")] string? Variant,
    [property: JsonPropertyName("created")] DateTimeOffset? Created,
    [property: JsonPropertyName("config")] ContainerDefaults? Config,
    [property: JsonPropertyName("rootfs")] RootFsSection RootFs)
{
    public static ImageConfigDocument Parse(ReadOnlySpan<byte> json, string what)
    {
        try
        {
            var config = JsonSerializer.Deserialize(json, OciJson.Default.ImageConfigDocument) ?? throw new JsonException("null");
            return config.RootFs?.DiffIds is null ? throw new JsonException("no rootfs.diff_ids") : config;
        }
        catch (JsonException e)
        {
            throw new FormatException($"{what} is not an image config: {e.Message}", e);
        }
    }
}

/// <summary>OCI image layout's index.json and <c>docker save</c>'s manifest.json entries.</summary>
internal sealed record DockerSaveEntry(
    [property: JsonPropertyName("Config")] string Config,
    [property: JsonPropertyName("RepoTags")] string[]? RepoTags,
    [property: JsonPropertyName("Layers")] string[] Layers);

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, PropertyNameCaseInsensitive = false)]
[JsonSerializable(typeof(ManifestDocument))]
[JsonSerializable(typeof(ImageConfigDocument))]
[JsonSerializable(typeof(DockerSaveEntry[]))]
[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class OciJson : JsonSerializerContext;
