using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Polly;
using Polly.Retry;

namespace IsoTest.Engine.Images;

/// <summary>Which registries may be reached over plain http, and which mirrors stand in for Docker Hub.</summary>
/// <param name="Insecure">Hosts (host[:port]) allowed over http besides loopback: <c>ISOTEST_INSECURE_REGISTRIES</c> and daemon.json's insecure-registries.</param>
/// <param name="Mirrors">Mirror base URLs tried first for docker.io (daemon.json's registry-mirrors, <c>ISOTEST_REGISTRY_MIRRORS</c>).</param>
internal sealed record RegistrySettings(IReadOnlySet<string> Insecure, IReadOnlyList<Uri> Mirrors)
{
    public static RegistrySettings FromEnvironment(string daemonJson = "/etc/docker/daemon.json")
    {
        var insecure = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var mirrors = new List<Uri>();
        foreach (var host in Split(Environment.GetEnvironmentVariable("ISOTEST_INSECURE_REGISTRIES")))
        {
            insecure.Add(host);
        }

        foreach (var mirror in Split(Environment.GetEnvironmentVariable("ISOTEST_REGISTRY_MIRRORS")))
        {
            mirrors.Add(new Uri(mirror.TrimEnd('/') + "/"));
        }

        try
        {
            using var json = JsonDocument.Parse(File.ReadAllBytes(daemonJson));
            if (json.RootElement.TryGetProperty("insecure-registries", out var list) && list.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in list.EnumerateArray())
                {
                    insecure.Add(item.GetString() ?? "");
                }
            }

            if (json.RootElement.TryGetProperty("registry-mirrors", out var m) && m.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in m.EnumerateArray())
                {
                    mirrors.Add(new Uri((item.GetString() ?? "").TrimEnd('/') + "/"));
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or UriFormatException)
        {
            // No daemon.json (the usual case) or one we cannot read: nothing is insecure, no mirrors.
        }

        return new RegistrySettings(insecure, mirrors);
    }

    /// <summary>http for loopback registries (as Docker allows) and listed ones; https for every other.</summary>
    public string SchemeFor(string registry)
    {
        var host = registry.StartsWith('[') ? registry[1..registry.IndexOf(']', StringComparison.Ordinal)] : registry.Split(':')[0];
        var loopback = host == "localhost" || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
        return loopback || Insecure.Contains(registry) || Insecure.Contains(host) ? "http" : "https";
    }

    private static IEnumerable<string> Split(string? value) =>
        (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

/// <summary>
/// The OCI distribution API over HttpClient: anonymous, bearer-token (the WWW-Authenticate challenge,
/// its realm, service and scope; tokens cached until they expire) and basic auth with credentials from
/// the docker CLI's config; manifests with the digest checked, blobs streamed with their digest checked
/// by the store as they are written; redirects to blob storage followed (the Authorization header is not
/// sent on); transient failures (connection errors, 5xx, 429, a stream cut short) retried with backoff.
/// </summary>
internal sealed class RegistryClient : IImageSource, IDisposable
{
    private static readonly TimeSpan DefaultTokenLifetime = TimeSpan.FromSeconds(60);

    private readonly HttpClient _http;
    private readonly DockerCredentials _credentials;
    private readonly RegistrySettings _settings;
    private readonly TimeProvider _time;
    private readonly ResiliencePipeline _retry;
    private readonly ConcurrentDictionary<string, (string Header, DateTimeOffset Expires)> _tokens = new(StringComparer.Ordinal);

    public RegistryClient(string registry, DockerCredentials credentials, RegistrySettings settings, TimeProvider? time = null, HttpMessageHandler? handler = null, int maxAttempts = 4)
    {
        Registry = registry;
        _credentials = credentials;
        _settings = settings;
        _time = time ?? TimeProvider.System;
        _http = new HttpClient(handler ?? new SocketsHttpHandler
        {
            AllowAutoRedirect = true,
            MaxAutomaticRedirections = 10,
            ConnectTimeout = TimeSpan.FromSeconds(15),
            AutomaticDecompression = DecompressionMethods.None,
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("isotest/1.0");
        _retry = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = maxAttempts - 1,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(200),
                ShouldHandle = new PredicateBuilder().Handle<TransientRegistryException>(),
            })
            .Build();
    }

    public string Registry { get; }

    public string Name => Registry;

    /// <summary>The base URLs to try: Docker Hub's mirrors first, then the registry itself.</summary>
    private IEnumerable<Uri> Bases()
    {
        if (Registry == ImageReference.DockerHub)
        {
            foreach (var mirror in _settings.Mirrors)
            {
                yield return mirror;
            }

            yield return new Uri("https://registry-1.docker.io/");
            yield break;
        }

        yield return new Uri($"{_settings.SchemeFor(Registry)}://{Registry}/");
    }

    public async Task<FetchedManifest> GetManifestAsync(ImageReference reference, string tagOrDigest, CancellationToken cancellationToken)
    {
        return await WithBasesAsync(reference, async baseUri =>
        {
            var uri = new Uri(baseUri, $"v2/{reference.Repository}/manifests/{tagOrDigest}");
            using var response = await SendAsync(reference, () =>
            {
                var request = new HttpRequestMessage(HttpMethod.Get, uri);
                foreach (var type in MediaTypes.Accepted)
                {
                    request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
                }

                return request;
            }, $"manifest {tagOrDigest}", cancellationToken).ConfigureAwait(false);
            var content = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            var digest = ImageStore.Digest(content);
            if (tagOrDigest.Contains(':', StringComparison.Ordinal) && digest != tagOrDigest)
            {
                throw new ImagePullException(reference.ToString(), Registry, $"the manifest served for {tagOrDigest} hashes to {digest}: the registry (or something between) altered it.");
            }

            if (response.Headers.TryGetValues("Docker-Content-Digest", out var header) && header.FirstOrDefault() is { } claimed
                && claimed.StartsWith("sha256:", StringComparison.Ordinal) && claimed != digest)
            {
                throw new ImagePullException(reference.ToString(), Registry, $"the manifest hashes to {digest} but the registry says {claimed}: it was altered on the way.");
            }

            return new FetchedManifest(content, digest, response.Content.Headers.ContentType?.MediaType);
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task GetBlobAsync(ImageReference reference, Descriptor blob, Stream destination, Action<long>? onBytes, CancellationToken cancellationToken)
    {
        await WithBasesAsync<bool>(reference, async baseUri =>
        {
            var uri = new Uri(baseUri, $"v2/{reference.Repository}/blobs/{blob.Digest}");
            var written = 0L;
            await _retry.ExecuteAsync(async ct =>
            {
                // A retry resumes where the cut stream stopped (Range), so the store's digest covers one copy of each byte.
                using var response = await SendOnceAsync(reference, () =>
                {
                    var request = new HttpRequestMessage(HttpMethod.Get, uri);
                    if (written > 0)
                    {
                        request.Headers.Range = new RangeHeaderValue(written, null);
                    }

                    return request;
                }, $"blob {blob.Digest}", ct).ConfigureAwait(false);
                if (written > 0 && response.StatusCode != HttpStatusCode.PartialContent)
                {
                    throw new ImagePullException(reference.ToString(), Registry, $"blob {blob.Digest} was cut off after {written} bytes and the registry cannot resume it (no Range support).");
                }

                var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
                await using (body.ConfigureAwait(false))
                {
                    var buffer = new byte[1 << 16];
                    try
                    {
                        int n;
                        while ((n = await body.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                        {
                            await destination.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                            written += n;
                            onBytes?.Invoke(n);
                        }
                    }
                    catch (Exception e) when (e is IOException or HttpRequestException && !ct.IsCancellationRequested)
                    {
                        throw new TransientRegistryException($"the blob stream broke after {written} bytes: {e.Message}", e);
                    }
                }

                if (blob.Size > 0 && written < blob.Size)
                {
                    throw new TransientRegistryException($"the blob stream ended after {written} of {blob.Size} bytes", null);
                }
            }, cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _http.Dispose();

    /// <summary>Tries each base URL (mirrors, then the registry); the registry's own error wins when all fail.</summary>
    private async Task<T> WithBasesAsync<T>(ImageReference reference, Func<Uri, Task<T>> action, CancellationToken cancellationToken)
    {
        var bases = Bases().ToList();
        for (var i = 0; ; i++)
        {
            try
            {
                return await action(bases[i]).ConfigureAwait(false);
            }
            catch (ImagePullException) when (i < bases.Count - 1 && !cancellationToken.IsCancellationRequested)
            {
                // a mirror that lacks the image or is down: the next one (finally the registry) may have it
            }
            catch (TransientRegistryException e)
            {
                if (i < bases.Count - 1)
                {
                    continue;
                }

                throw new ImagePullException(reference.ToString(), Registry, $"{e.Message} (gave up after retries): check that the registry is up and reachable.", e);
            }
        }
    }

    private async Task<HttpResponseMessage> SendAsync(ImageReference reference, Func<HttpRequestMessage> make, string what, CancellationToken cancellationToken) =>
        await _retry.ExecuteAsync(async ct => await SendOnceAsync(reference, make, what, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);

    /// <summary>One request, answering an auth challenge once; errors become ImagePullException (final) or TransientRegistryException (retried).</summary>
    private async Task<HttpResponseMessage> SendOnceAsync(ImageReference reference, Func<HttpRequestMessage> make, string what, CancellationToken cancellationToken)
    {
        var scope = $"repository:{reference.Repository}:pull";
        var response = await SendRawAsync(make, _tokens.TryGetValue(TokenKey(scope), out var cached) && cached.Expires > _time.GetUtcNow() ? cached.Header : BasicHeader(), reference, cancellationToken).ConfigureAwait(false);
        string? realm = null;
        if (response.StatusCode == HttpStatusCode.Unauthorized && response.Headers.WwwAuthenticate.FirstOrDefault() is { } challenge)
        {
            response.Dispose();
            var header = await AuthorizeAsync(reference, challenge, scope, cancellationToken).ConfigureAwait(false);
            realm = header.StartsWith("Bearer ", StringComparison.Ordinal) ? ParseChallenge(challenge.Parameter ?? "").GetValueOrDefault("realm") : null;
            response = await SendRawAsync(make, header, reference, cancellationToken).ConfigureAwait(false);
        }

        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            var text = await RegistryError(response, cancellationToken).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (status >= 500 || status == 429 || status == 408)
            {
                throw new TransientRegistryException($"the registry answered {what} with HTTP {status}{text}", null);
            }

            // A Bearer registry says why in the new challenge: invalid_token (a token it does not accept) or insufficient_scope.
            var why = status == 401 && response.Headers.WwwAuthenticate.FirstOrDefault() is { } again
                && ParseChallenge(again.Parameter ?? "").TryGetValue("error", out var error) ? $", error={error}" : "";
            throw new ImagePullException(reference.ToString(), Registry, status switch
            {
                404 => $"the registry has no {what} for {reference.Repository} (HTTP 404{text}): check the name and tag.",
                401 when BasicHeader() is null =>
                    $"the registry wants credentials for {what} (HTTP 401{text}{why}) and no credentials are configured for {Registry}: run docker login {Registry} (or add it to config.json's auths or a credential helper).",
                401 when realm is not null =>
                    $"the registry refused the token from {realm} for {what} (HTTP 401{text}{why}): check that the credentials for {Registry} may pull {reference.Repository}, and that the registry trusts the token service.",
                401 => $"the registry refused the credentials for {what} (HTTP 401{text}{why}): check docker login / config.json for {Registry}.",
                403 => $"the registry denied access to {what} (HTTP 403{text}): these credentials may not pull {reference.Repository}.",
                _ => $"the registry answered {what} with HTTP {status}{text}.",
            });
        }
    }

    private async Task<HttpResponseMessage> SendRawAsync(Func<HttpRequestMessage> make, string? authorization, ImageReference reference, CancellationToken cancellationToken)
    {
        using var request = make();
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
        {
            throw new TransientRegistryException($"the registry at {request.RequestUri?.GetLeftPart(UriPartial.Authority)} refuses connections ({e.Message}): is it running?", e);
        }
        catch (HttpRequestException e) when (e.HttpRequestError == HttpRequestError.SecureConnectionError)
        {
            throw new ImagePullException(reference.ToString(), Registry,
                $"TLS to {request.RequestUri?.GetLeftPart(UriPartial.Authority)} failed ({e.Message}): a plain-http registry must be listed in ISOTEST_INSECURE_REGISTRIES or daemon.json's insecure-registries.", e);
        }
        catch (HttpRequestException e)
        {
            throw new TransientRegistryException($"{request.RequestUri?.GetLeftPart(UriPartial.Authority)}: {e.Message}", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TransientRegistryException($"{request.RequestUri?.GetLeftPart(UriPartial.Authority)} timed out", e);
        }
    }

    /// <summary>Answers a challenge: Basic with the stored credentials, or Bearer with a token from the realm (cached per scope).</summary>
    private async Task<string> AuthorizeAsync(ImageReference reference, AuthenticationHeaderValue challenge, string scope, CancellationToken cancellationToken)
    {
        if (challenge.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
        {
            return BasicHeader() ?? throw new ImagePullException(reference.ToString(), Registry,
                $"the registry wants a user name and password and none is configured: run docker login {Registry} (or add it to config.json's auths).");
        }

        if (!challenge.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            throw new ImagePullException(reference.ToString(), Registry, $"the registry asks for '{challenge.Scheme}' authentication, which IsoTest does not speak (Basic and Bearer only).");
        }

        var parameters = ParseChallenge(challenge.Parameter ?? "");
        if (!parameters.TryGetValue("realm", out var realm))
        {
            throw new ImagePullException(reference.ToString(), Registry, "the registry's Bearer challenge names no realm to get a token from.");
        }

        // A realm may carry a query of its own (…/token?account=x): add to it rather than start a second one.
        var query = new StringBuilder(realm.Contains('?', StringComparison.Ordinal) ? "&" : "?");
        if (parameters.TryGetValue("service", out var service))
        {
            query.Append("service=").Append(Uri.EscapeDataString(service)).Append('&');
        }

        query.Append("scope=").Append(Uri.EscapeDataString(parameters.GetValueOrDefault("scope") ?? scope));
        using var request = new HttpRequestMessage(HttpMethod.Get, realm + query);
        if (BasicHeader() is { } basic)
        {
            request.Headers.TryAddWithoutValidation("Authorization", basic);
        }

        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new TransientRegistryException($"the token service {realm} is unreachable: {e.Message}", e);
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new ImagePullException(reference.ToString(), Registry,
                    $"the token service {realm} refused (HTTP {(int)response.StatusCode}: {Trim(body)}): check the credentials for {Registry}.");
            }

            using var json = JsonDocument.Parse(body);
            var token = (json.RootElement.TryGetProperty("token", out var t) ? t.GetString() : null)
                ?? (json.RootElement.TryGetProperty("access_token", out var a) ? a.GetString() : null)
                ?? throw new ImagePullException(reference.ToString(), Registry, $"the token service {realm} answered without a token.");
            var lifetime = json.RootElement.TryGetProperty("expires_in", out var e) && e.TryGetInt32(out var seconds) && seconds > 0
                ? TimeSpan.FromSeconds(seconds)
                : DefaultTokenLifetime;
            var header = "Bearer " + token;
            // Refresh a little early so a token never expires between the check and the request.
            _tokens[TokenKey(scope)] = (header, _time.GetUtcNow() + lifetime - TimeSpan.FromSeconds(Math.Min(10, lifetime.TotalSeconds / 4)));
            return header;
        }
    }

    private string TokenKey(string scope) => Registry + " " + scope;

    private string? BasicHeader() =>
        _credentials.For(Registry) is { } c ? "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{c.Username}:{c.Secret}")) : null;

    internal static Dictionary<string, string> ParseChallenge(string parameter)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var i = 0;
        while (i < parameter.Length)
        {
            while (i < parameter.Length && (parameter[i] == ',' || char.IsWhiteSpace(parameter[i])))
            {
                i++;
            }

            var eq = parameter.IndexOf('=', i);
            if (eq < 0)
            {
                break;
            }

            var key = parameter[i..eq].Trim();
            i = eq + 1;
            string value;
            if (i < parameter.Length && parameter[i] == '"')
            {
                var end = parameter.IndexOf('"', i + 1);
                end = end < 0 ? parameter.Length : end;
                value = parameter[(i + 1)..end];
                i = end + 1;
            }
            else
            {
                var end = parameter.IndexOf(',', i);
                end = end < 0 ? parameter.Length : end;
                value = parameter[i..end].Trim();
                i = end;
            }

            result[key] = value;
        }

        return result;
    }

    private static async Task<string> RegistryError(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var json = JsonDocument.Parse(body);
            if (json.RootElement.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array)
            {
                var messages = errors.EnumerateArray()
                    .Select(e => $"{(e.TryGetProperty("code", out var c) ? c.GetString() : "")}: {(e.TryGetProperty("message", out var m) ? m.GetString() : "")}");
                return ", " + string.Join("; ", messages);
            }
        }
        catch (JsonException)
        {
        }

        return string.IsNullOrWhiteSpace(body) ? "" : ", " + Trim(body);
    }

    private static string Trim(string text) => text.Length > 300 ? text[..300] + "…" : text.Trim();

    internal static string Sha256(byte[] content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));
}

/// <summary>A failure worth retrying: a refused or broken connection, a 5xx or 429, a stream cut short.</summary>
internal sealed class TransientRegistryException(string message, Exception? inner) : Exception(message, inner);
