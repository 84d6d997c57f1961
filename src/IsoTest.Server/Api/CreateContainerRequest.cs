using System.Text.Json;
using System.Text.Json.Serialization;

namespace IsoTest.Server.Api;

// The body of POST /containers/create, as far as IsoTest maps it (docs.docker.com/engine/api, ContainerConfig,
// HostConfig, NetworkingConfig). Fields not listed are ignored, as dockerd ignores unknown ones.

internal sealed class CreateContainerRequest
{
    public string? Hostname { get; set; }
    public string? User { get; set; }
    public bool AttachStdin { get; set; }
    public bool OpenStdin { get; set; }
    public bool Tty { get; set; }
    public List<string>? Env { get; set; }
    [JsonConverter(typeof(StringOrArrayConverter))]
    public List<string>? Cmd { get; set; }
    [JsonConverter(typeof(StringOrArrayConverter))]
    public List<string>? Entrypoint { get; set; }
    public string? Image { get; set; }
    public string? WorkingDir { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
    public Dictionary<string, JsonElement>? ExposedPorts { get; set; }
    public string? StopSignal { get; set; }
    public int? StopTimeout { get; set; }
    public HostConfigRequest? HostConfig { get; set; }
    public NetworkingConfigRequest? NetworkingConfig { get; set; }
}

internal sealed class HostConfigRequest
{
    public List<string>? Binds { get; set; }
    public string? NetworkMode { get; set; }
    public Dictionary<string, List<PortBinding>?>? PortBindings { get; set; }
    public bool PublishAllPorts { get; set; }
    public bool AutoRemove { get; set; }
    public long Memory { get; set; }
    public long MemorySwap { get; set; }
    public long NanoCpus { get; set; }
    public long CpuQuota { get; set; }
    public long CpuPeriod { get; set; }
    public long? PidsLimit { get; set; }
    public string? CpusetCpus { get; set; }
    public List<MountRequest>? Mounts { get; set; }
    public Dictionary<string, string>? Tmpfs { get; set; }
    public bool ReadonlyRootfs { get; set; }
    public List<string>? ExtraHosts { get; set; }
    public bool Privileged { get; set; }
    public List<string>? CapAdd { get; set; }
    public List<string>? SecurityOpt { get; set; }
}

internal sealed record PortBinding(string? HostIp, string? HostPort);

internal sealed class MountRequest
{
    public string? Type { get; set; }
    public string? Source { get; set; }
    public string? Target { get; set; }
    public bool ReadOnly { get; set; }
    public TmpfsOptionsRequest? TmpfsOptions { get; set; }
}

internal sealed class TmpfsOptionsRequest
{
    public long SizeBytes { get; set; }
}

internal sealed class NetworkingConfigRequest
{
    public Dictionary<string, EndpointSettingsRequest?>? EndpointsConfig { get; set; }
}

internal sealed class EndpointSettingsRequest
{
    public List<string>? Aliases { get; set; }
}

/// <summary>Docker's strslice: a command is a JSON array, or (older clients) a single string.</summary>
internal sealed class StringOrArrayConverter : JsonConverter<List<string>?>
{
    public override List<string>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.Null => null,
        JsonTokenType.String => [reader.GetString()!],
        _ => JsonSerializer.Deserialize<List<string>>(ref reader, options),
    };

    public override void Write(Utf8JsonWriter writer, List<string>? value, JsonSerializerOptions options) =>
        JsonSerializer.Serialize(writer, value, options);
}
