using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace IsoTest.Server.Http;

/// <summary>
/// Docker's API versioning: every route answers unversioned and as <c>/v1.NN/...</c>; a version below
/// the minimum or above the maximum is refused with dockerd's own words; every response carries the
/// headers dockerd sends (clients negotiate from <c>API-Version</c> on <c>/_ping</c>).
/// </summary>
internal static partial class ApiVersioning
{
    /// <summary>The version claimed: Testcontainers .NET and Java default to 1.44, and Docker 29 refuses older clients.</summary>
    public static readonly Version Current = new(1, 44);

    /// <summary>The oldest version accepted (what dockerd 25+ still accepts).</summary>
    public static readonly Version Minimum = new(1, 24);

    private const string VersionItem = "isotest.api-version";

    /// <summary>The version the client asked for in the path, or <see cref="Current"/> when unversioned.</summary>
    public static Version Of(HttpContext context) =>
        context.Items.TryGetValue(VersionItem, out var v) && v is Version version ? version : Current;

    public static async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var headers = context.Response.Headers;
        headers["Api-Version"] = Format(Current);
        headers["Docker-Experimental"] = "false";
        headers["Ostype"] = "linux";
        headers["Server"] = $"IsoTest/{ServerInfo.Version} (linux)";

        if ((context.Request.Path.Value ?? "").Contains('\0', StringComparison.Ordinal))
        {
            // A NUL (%00) makes the router throw; dockerd answers a path it cannot route with 404 too.
            await DockerError.WriteAsync(context, StatusCodes.Status404NotFound, "page not found").ConfigureAwait(false);
            return;
        }

        if (!TryStrip(context.Request.Path.Value ?? "", out var asked, out var route))
        {
            var message = asked < Minimum
                ? $"client version {Format(asked)} is too old. Minimum supported API version is {Format(Minimum)}, please upgrade your client to a newer version"
                : $"client version {Format(asked)} is too new. Maximum supported API version is {Format(Current)}";
            await DockerError.WriteAsync(context, StatusCodes.Status400BadRequest, message).ConfigureAwait(false);
            return;
        }

        context.Items[VersionItem] = asked;
        context.Request.Path = route;
        await next(context).ConfigureAwait(false);
    }

    /// <summary>Splits <c>/v1.44/containers/json</c> into the version and the route; false for a version outside the accepted range.</summary>
    public static bool TryStrip(string path, out Version version, out string route)
    {
        var match = VersionPrefix().Match(path);
        (version, route) = (Current, path);
        if (!match.Success)
        {
            return true;
        }

        // Digits beyond int (v99999999999.1) are a version too new, not an overflow.
        version = int.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var major) && int.TryParse(match.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var minor)
            ? new Version(major, minor)
            : new Version(int.MaxValue, 0);
        route = match.Groups[3].Value.Length == 0 ? "/" : match.Groups[3].Value;
        return version >= Minimum && version <= Current;
    }

    public static string Format(Version version) => $"{version.Major}.{version.Minor}";

    [GeneratedRegex(@"^/v(\d+)\.(\d+)(/.*)?$", RegexOptions.CultureInvariant)]
    private static partial Regex VersionPrefix();
}
