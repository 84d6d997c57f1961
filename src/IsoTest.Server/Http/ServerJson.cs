using System.Text.Json;
using System.Text.Json.Serialization;

namespace IsoTest.Server.Http;

/// <summary>
/// Docker's JSON: property names as written (PascalCase), read case-insensitively and with unknown fields
/// ignored, as Go's encoding/json does for dockerd.
/// </summary>
internal static class ServerJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = null,
        PropertyNameCaseInsensitive = true,
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        MaxDepth = 64,
    };

    /// <summary>A request body, or <paramref name="empty"/> when there is none (dockerd accepts an empty body for most posts).</summary>
    public static async Task<T> ReadAsync<T>(Microsoft.AspNetCore.Http.HttpRequest request, T empty, CancellationToken cancellationToken)
    {
        if (request.ContentLength == 0 || (request.ContentLength is null && !request.Headers.TransferEncoding.Any(v => v?.Contains("chunked", StringComparison.OrdinalIgnoreCase) == true)))
        {
            return empty;
        }

        return await JsonSerializer.DeserializeAsync<T>(request.Body, Options, cancellationToken).ConfigureAwait(false) ?? empty;
    }
}
