using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace IsoTest.Engine.Images;

internal sealed record RegistryCredential(string Username, string Secret);

/// <summary>
/// Registry credentials as the docker CLI keeps them: <c>$DOCKER_CONFIG/config.json</c> (else
/// <c>~/.docker/config.json</c>), per-registry <c>credHelpers</c> first, then <c>credsStore</c>, then
/// <c>auths</c> (base64 <c>user:password</c>). Helpers are the <c>docker-credential-NAME</c> programs,
/// asked with <c>get</c> and the server on stdin. Looked up once per registry and kept.
/// </summary>
internal sealed class DockerCredentials
{
    private readonly string? _configPath;
    private readonly Dictionary<string, RegistryCredential?> _cache = new(StringComparer.Ordinal);

    public DockerCredentials(string? configPath = null)
    {
        _configPath = configPath ?? DefaultPath();
    }

    public static DockerCredentials None { get; } = new("/nonexistent/config.json");

    private static string DefaultPath()
    {
        var dir = Environment.GetEnvironmentVariable("DOCKER_CONFIG");
        return Path.Combine(string.IsNullOrEmpty(dir) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".docker") : dir, "config.json");
    }

    public RegistryCredential? For(string registry)
    {
        lock (_cache)
        {
            if (!_cache.TryGetValue(registry, out var credential))
            {
                credential = Lookup(registry);
                _cache[registry] = credential;
            }

            return credential;
        }
    }

    private RegistryCredential? Lookup(string registry)
    {
        JsonDocument json;
        try
        {
            json = JsonDocument.Parse(File.ReadAllBytes(_configPath!));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        catch (JsonException e)
        {
            throw new ImagePullException(registry, registry, $"{_configPath} is not valid JSON ({e.Message}): fix or remove it.");
        }

        using (json)
        {
            var root = json.RootElement;
            // Docker Hub's credentials live under its historical key.
            var keys = registry == ImageReference.DockerHub
                ? new[] { "https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io" }
                : new[] { registry, "https://" + registry, "http://" + registry };
            if (root.TryGetProperty("credHelpers", out var helpers) && helpers.ValueKind == JsonValueKind.Object)
            {
                foreach (var key in keys)
                {
                    if (helpers.TryGetProperty(key, out var helper) && helper.GetString() is { Length: > 0 } name)
                    {
                        return FromHelper(name, keys[0], registry);
                    }
                }
            }

            if (root.TryGetProperty("credsStore", out var store) && store.GetString() is { Length: > 0 } storeName)
            {
                if (FromHelper(storeName, keys[0], registry) is { } stored)
                {
                    return stored;
                }
            }

            if (root.TryGetProperty("auths", out var auths) && auths.ValueKind == JsonValueKind.Object)
            {
                foreach (var key in keys)
                {
                    if (!auths.TryGetProperty(key, out var entry) || entry.ValueKind != JsonValueKind.Object)
                    {
                        continue;
                    }

                    if (entry.TryGetProperty("auth", out var auth) && auth.GetString() is { Length: > 0 } encoded)
                    {
                        var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(encoded));
                        var colon = decoded.IndexOf(':', StringComparison.Ordinal);
                        if (colon > 0)
                        {
                            return new RegistryCredential(decoded[..colon], decoded[(colon + 1)..]);
                        }
                    }

                    if (entry.TryGetProperty("username", out var u) && entry.TryGetProperty("password", out var p))
                    {
                        return new RegistryCredential(u.GetString() ?? "", p.GetString() ?? "");
                    }
                }
            }
        }

        return null;
    }

    /// <summary>Runs <c>docker-credential-NAME get</c>; "credentials not found" is no credential, other failures are errors.</summary>
    private static RegistryCredential? FromHelper(string name, string server, string registry)
    {
        var program = "docker-credential-" + name;
        var start = new ProcessStartInfo(program, ["get"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        System.Diagnostics.Process process;
        try
        {
            process = System.Diagnostics.Process.Start(start) ?? throw new InvalidOperationException("no process");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ImagePullException(registry, registry, $"config.json names the credential helper '{name}', but {program} is not on PATH ({e.Message}): install it or remove it from config.json.");
        }

        using (process)
        {
            process.StandardInput.Write(server);
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEnd();
            var error = process.StandardError.ReadToEnd();
            if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                process.Kill(entireProcessTree: true);
                throw new ImagePullException(registry, registry, $"{program} get did not answer within 30 s.");
            }

            if (process.ExitCode != 0)
            {
                if ((output + error).Contains("credentials not found", StringComparison.OrdinalIgnoreCase))
                {
                    return null;
                }

                throw new ImagePullException(registry, registry, $"{program} get failed (exit {process.ExitCode}): {(output + error).Trim()}");
            }

            try
            {
                using var json = JsonDocument.Parse(output);
                var user = json.RootElement.GetProperty("Username").GetString() ?? "";
                var secret = json.RootElement.GetProperty("Secret").GetString() ?? "";
                // "<token>" as the user name means an identity token; registries take it as a password grant.
                return new RegistryCredential(user, secret);
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException)
            {
                throw new ImagePullException(registry, registry, $"{program} get printed something that is not {{\"Username\",\"Secret\"}}: {e.Message}");
            }
        }
    }
}
