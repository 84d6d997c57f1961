using IsoTest.Server.Containers;
using IsoTest.Server.Http;
using IsoTest.Server.Volumes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace IsoTest.Server.Api;

/// <summary>/volumes/...: create, list, inspect, remove and prune named volumes (dockerd's local driver).</summary>
internal static class VolumeEndpoints
{
    public static void Map(IEndpointRouteBuilder app, VolumeTable volumes, ContainerTable containers)
    {
        app.MapPost("/volumes/create", async (HttpContext context) =>
        {
            var request = await ServerJson.ReadAsync(context.Request, new VolumeCreateRequest(), context.RequestAborted).ConfigureAwait(false);
            if (request.Driver is not (null or "" or "local"))
            {
                throw DockerApiException.BadRequest($"volume driver {request.Driver} is not supported: IsoTest's volumes are local directories (leave --driver out)");
            }

            if (request.DriverOpts is { Count: > 0 })
            {
                throw DockerApiException.BadRequest("volume driver options (--opt) are not supported: IsoTest's volumes are plain directories");
            }

            return Results.Json(View(volumes.Create(request.Name, request.Labels), containers), ServerJson.Options, statusCode: StatusCodes.Status201Created);
        });

        app.MapGet("/volumes", (string? filters) =>
        {
            var wanted = QueryFilters.Parse(filters, ["name", "label", "dangling", "driver"]);
            var list = volumes.All.Where(v => wanted.All(f => f.Key switch
            {
                "name" => f.Value.Any(n => v.Name.Contains(n, StringComparison.Ordinal)),
                "label" => QueryFilters.MatchesLabels(f.Value, v.Labels),
                "dangling" => f.Value.Contains(Users(v, containers).Any() ? "false" : "true") || f.Value.Contains(Users(v, containers).Any() ? "0" : "1"),
                _ => f.Value.Contains("local"),
            }));
            return Results.Json(new Dictionary<string, object?> { ["Volumes"] = list.Select(v => View(v, containers)).ToList(), ["Warnings"] = Array.Empty<string>() }, ServerJson.Options);
        });

        app.MapGet("/volumes/{name}", (string name) => Results.Json(View(Find(volumes, name), containers), ServerJson.Options));

        app.MapDelete("/volumes/{name}", (string name) =>
        {
            var volume = Find(volumes, name);
            if (Users(volume, containers).Select(c => c.Id).ToList() is { Count: > 0 } users)
            {
                throw DockerApiException.Conflict($"remove {volume.Name}: volume is in use - [{string.Join(", ", users)}]");
            }

            volumes.Remove(volume);
            return Results.NoContent();
        });

        app.MapPost("/volumes/prune", (string? filters) =>
        {
            var wanted = QueryFilters.Parse(filters, ["label", "all"]);
            var unused = volumes.All
                .Where(v => !Users(v, containers).Any())
                .Where(v => !wanted.TryGetValue("label", out var labels) || QueryFilters.MatchesLabels(labels, v.Labels))
                .ToList();
            foreach (var volume in unused)
            {
                volumes.Remove(volume);
            }

            return Results.Json(new Dictionary<string, object?> { ["VolumesDeleted"] = unused.Select(v => v.Name).ToList(), ["SpaceReclaimed"] = 0 }, ServerJson.Options);
        });
    }

    private static ServerVolume Find(VolumeTable volumes, string name) =>
        volumes.Find(name) ?? throw new DockerApiException(StatusCodes.Status404NotFound, $"get {name}: no such volume");

    /// <summary>The containers whose request mounts the volume (whatever their state: dockerd refuses removal for those too).</summary>
    private static IEnumerable<ServerContainer> Users(ServerVolume volume, ContainerTable containers) =>
        containers.All.Where(c => SpecMapper.VolumeNames(c.Request).Contains(volume.Name));

    internal static Dictionary<string, object?> View(ServerVolume volume, ContainerTable containers) => new()
    {
        ["Name"] = volume.Name,
        ["Driver"] = "local",
        ["Mountpoint"] = volume.Mountpoint,
        ["CreatedAt"] = ContainerViews.Time(volume.Created),
        ["Labels"] = volume.Labels,
        ["Scope"] = "local",
        ["Options"] = new Dictionary<string, string>(),
        ["UsageData"] = new Dictionary<string, object?> { ["Size"] = -1, ["RefCount"] = Users(volume, containers).Count() },
    };

    private sealed class VolumeCreateRequest
    {
        public string? Name { get; set; }

        public string? Driver { get; set; }

        public Dictionary<string, string>? DriverOpts { get; set; }

        public Dictionary<string, string>? Labels { get; set; }
    }
}
