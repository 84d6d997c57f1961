using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace IsoTest.TestSupport;

/// <summary>
/// A token service as the distribution spec's token auth expects one, on a loopback port: GET /token?service=&amp;scope=
/// with optional Basic credentials answers {"token", "access_token", "expires_in"}, an ES256 JWT whose x5c header carries
/// a throwaway self-signed certificate made here (the registry trusts it through its rootcertbundle, <see cref="CertificatePem"/>).
/// Known users get every action they ask for; anonymous callers get a token granting nothing; a wrong password is HTTP 401.
/// Every request is recorded, so tests can count how often a client came back for a token.
/// </summary>
public sealed class TokenIssuer : IDisposable
{
    public const string Service = "isotest-registry";

    public const string Issuer = "isotest-test-issuer";

    private readonly HttpListener _listener = new();
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly X509Certificate2 _certificate;
    private readonly ECDsa _untrustedKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly X509Certificate2 _untrustedCertificate;
    private readonly Dictionary<string, string> _users;
    private readonly List<(string? User, string Service, string Scope)> _requests = [];
    private readonly Task _loop;

    public TokenIssuer(Dictionary<string, string> users)
    {
        _users = users;
        _certificate = SelfSigned(_key, "CN=isotest token issuer");
        _untrustedCertificate = SelfSigned(_untrustedKey, "CN=someone else");
        Port = LocalRegistry.FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public int Port { get; }

    public string Realm => $"http://127.0.0.1:{Port}/token";

    /// <summary>The certificate the registry's rootcertbundle holds.</summary>
    public string CertificatePem => _certificate.ExportCertificatePem();

    /// <summary>Sign with a key the registry does not trust (a forged or stale token).</summary>
    public bool SignWithUntrustedKey { get; set; }

    /// <summary>expires_in of the tokens handed out.</summary>
    public int ExpiresIn { get; set; } = 300;

    public IReadOnlyList<(string? User, string Service, string Scope)> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    private static X509Certificate2 SelfSigned(ECDsa key, string subject)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            try
            {
                Answer(context);
            }
            catch (Exception e) when (e is HttpListenerException or IOException)
            {
                // the client went away
            }
        }
    }

    private void Answer(HttpListenerContext context)
    {
        var query = context.Request.QueryString;
        var service = query["service"] ?? "";
        var scopes = query.GetValues("scope") ?? [];
        string? user = null;
        var header = context.Request.Headers["Authorization"];
        if (header is not null && header.StartsWith("Basic ", StringComparison.Ordinal))
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header["Basic ".Length..]));
            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            user = decoded[..colon];
            if (!_users.TryGetValue(user, out var password) || password != decoded[(colon + 1)..])
            {
                Record(user, service, scopes);
                Write(context.Response, 401, """{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]}""");
                return;
            }
        }

        Record(user, service, scopes);
        var access = new JsonArray();
        if (user is not null)
        {
            foreach (var scope in scopes)
            {
                // repository:NAME:ACTIONS, where NAME may hold ':' (a host:port is never part of it, but be exact anyway)
                var first = scope.IndexOf(':', StringComparison.Ordinal);
                var last = scope.LastIndexOf(':');
                access.Add(new JsonObject
                {
                    ["type"] = scope[..first],
                    ["name"] = scope[(first + 1)..last],
                    ["actions"] = new JsonArray([.. scope[(last + 1)..].Split(',').Select(a => (JsonNode)a)]),
                });
            }
        }

        var token = Sign(user ?? "", service, access);
        Write(context.Response, 200, new JsonObject { ["token"] = token, ["access_token"] = token, ["expires_in"] = ExpiresIn, ["issued_at"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture) }.ToJsonString());
    }

    private void Record(string? user, string service, string[] scopes)
    {
        lock (_requests)
        {
            _requests.Add((user, service, string.Join(' ', scopes)));
        }
    }

    private string Sign(string subject, string audience, JsonArray access)
    {
        var (key, certificate) = SignWithUntrustedKey ? (_untrustedKey, _untrustedCertificate) : (_key, _certificate);
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = new JsonObject { ["typ"] = "JWT", ["alg"] = "ES256", ["x5c"] = new JsonArray(Convert.ToBase64String(certificate.RawData)) };
        var claims = new JsonObject
        {
            ["iss"] = Issuer,
            ["sub"] = subject,
            ["aud"] = audience,
            ["exp"] = now + ExpiresIn,
            ["nbf"] = now - 60,
            ["iat"] = now,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["access"] = access,
        };
        var signingInput = Base64Url(Encoding.UTF8.GetBytes(header.ToJsonString())) + "." + Base64Url(Encoding.UTF8.GetBytes(claims.ToJsonString()));
        // ES256 in JWS is r||s (IEEE P1363), .NET's default signature format.
        var signature = key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256);
        return signingInput + "." + Base64Url(signature);
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static void Write(HttpListenerResponse response, int status, string json)
    {
        var body = Encoding.UTF8.GetBytes(json);
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength64 = body.Length;
        response.OutputStream.Write(body);
        response.Close();
    }

    public void Dispose()
    {
        // Close alone: Stop then Close removes the prefixes twice, and the managed HttpListener's second removal binds
        // the port again to find its endpoint, which throws "Address already in use" once another test has taken the
        // freed port (seen in a rootless CI lane).
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(10));
        _certificate.Dispose();
        _untrustedCertificate.Dispose();
        _key.Dispose();
        _untrustedKey.Dispose();
    }
}
