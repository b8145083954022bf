"""GLSL sources of the head renderer (OpenGL 3.3 core, run by Mesa's llvmpipe on the CPU).

Vertex inputs: ``in_pos``/``in_nrm`` (posed model frame, cm), ``in_ref`` (the vertex in the
mean neutral head: the coordinates every procedural texture is looked up with, so skin detail
and hair stick to the skin whatever the expression or identity), ``in_mat`` (Material id),
``in_ao`` (baked ambient occlusion, 0..1), ``in_noise`` (smooth noise at the vertex: two
hairline-jitter patterns that each identity mixes with its own angle, blotches, fine detail),
``in_skin`` (per identity: skin albedo and hair coverage, :mod:`.skin`). Lighting is computed in the camera frame (x right,
y up, z towards the viewer), linear RGB, written as sRGB (gamma 2.2) with alpha 1.
"""

VERTEX = """
#version 330
uniform mat4 u_model_view;
uniform mat4 u_proj;
in vec3 in_pos;
in vec3 in_nrm;
in vec3 in_ref;
in float in_mat;
in float in_ao;
in vec4 in_noise;
in vec4 in_skin;
out vec3 v_pos;
out vec3 v_nrm;
out vec3 v_ref;
out float v_ao;
out vec4 v_noise;
out vec4 v_skin;
flat out int v_mat;
void main() {
    vec4 p = u_model_view * vec4(in_pos, 1.0);
    v_pos = p.xyz;
    v_nrm = mat3(u_model_view) * in_nrm;
    v_ref = in_ref;
    v_ao = in_ao;
    v_noise = in_noise;
    v_skin = in_skin;
    v_mat = int(in_mat + 0.5);
    gl_Position = u_proj * p;
}
"""

FRAGMENT = """
#version 330
in vec3 v_pos;
in vec3 v_nrm;
in vec3 v_ref;
in float v_ao;
in vec4 v_noise;                // smooth per-vertex noise: hairline a, b, blotches, fine detail
                                // (tongue: x = how far along the tongue, 0 root .. 1 tip)
in vec4 v_skin;                 // per-identity skin albedo (linear RGB) and hair coverage
flat in int v_mat;
uniform mat4 u_model_view;
uniform sampler2D u_noise;      // tileable noise: r fine, g blotches, b strands, a medium
uniform sampler2D u_facemap;    // front projection: r lips, g brows, b beard area, a blush
uniform vec4 u_facemap_box;     // x0, y0 (cm), 1/width, 1/height (1/cm)
uniform vec3 u_light_dir;       // towards the key light, camera frame
uniform vec3 u_light_rgb;
uniform vec3 u_fill_dir;
uniform vec3 u_fill_rgb;
uniform vec3 u_sky_rgb;
uniform vec3 u_ground_rgb;
uniform vec2 u_spec;            // skin specular strength, shininess
uniform vec3 u_skin_rgb;
uniform vec3 u_lip_rgb;
uniform vec3 u_hair_rgb;
uniform vec3 u_iris_rgb;
uniform vec3 u_teeth_rgb;
uniform vec4 u_hair;            // front hairline y, back hairline y, unused, strand density
uniform vec4 u_skin;            // detail, blotches, beard, brows
uniform vec2 u_offset;          // per-identity noise offset
uniform vec2 u_mix;             // per-identity (cos, sin) mixing v_noise's two patterns
uniform vec2 u_eye;             // iris radius, pupil radius (cm)
uniform vec3 u_eye_c[2];        // eye centres (left, right), mean head
uniform vec3 u_eye_a[2];        // eye axes
uniform float u_tongue;         // tongueOut 0..1 (the tongue's tip leaves the dark mouth)
out vec4 f_color;

const float PI = 3.14159265;
vec3 skin(vec3 p, out float hair, out float spec_gain, out vec3 strand_t) {
    vec3 albedo = v_skin.rgb;
    vec4 fm = vec4(0.0);
    if (p.z > 2.0) {
        fm = texture(u_facemap, (p.xy - u_facemap_box.xy) * u_facemap_box.zw);
    }
    albedo = mix(albedo, u_lip_rgb * (0.9 + 0.3 * (0.5 + 0.3 * v_noise.w)), fm.r);
    if (fm.g > 0.01) {
        if (p.y > 4.7) {
            float hairs = texture(u_noise, vec2(p.x * 0.25, p.y * 1.5 - abs(p.x) * 0.3) + u_offset).b;
            albedo = mix(albedo, u_hair_rgb * 0.6 + 0.01, fm.g * u_skin.w * smoothstep(0.15, 0.75, hairs));
        } else {
            albedo = mix(albedo, vec3(0.012, 0.01, 0.009), fm.g * 0.85);
        }
    }
    spec_gain = 1.0 + fm.r * 0.8;
    hair = v_skin.a;
    if (hair > 0.002) {
        vec3 q = p - vec3(0.0, 2.0, -1.0);
        float phi = atan(q.x, q.z);
        float elev = atan(q.y, length(q.xz));
        float s1 = texture(u_noise, vec2(phi * u_hair.w, elev * 0.12) + u_offset).b;
        float s2 = texture(u_noise, vec2(phi * u_hair.w * 3.1, elev * 0.3) + u_offset.yx).r;
        float strand = clamp(0.65 * s1 + 0.35 * s2, 0.0, 1.0);
        vec3 hair_albedo = u_hair_rgb * (0.3 + 1.4 * strand * strand);
        strand_t = vec3(-sin(elev) * sin(phi), cos(elev), -sin(elev) * cos(phi));
        albedo = mix(albedo, hair_albedo, hair);
    }
    return albedo;
}

vec3 eye(vec3 p, out float spec_gain) {
    int side = p.x > 0.0 ? 0 : 1;
    vec3 l = p - u_eye_c[side];
    vec3 ax = u_eye_a[side];
    float along = dot(l, ax);
    vec3 radial = l - along * ax;
    float r = length(radial);
    vec3 ex = normalize(cross(vec3(0.0, 1.0, 0.0), ax));
    float ang = atan(dot(radial, cross(ax, ex)), dot(radial, ex));
    vec3 sclera = vec3(0.72, 0.68, 0.64) * (1.0 - 0.3 * smoothstep(0.7, 1.5, r));
    float streak = texture(u_noise, vec2(ang * 0.6, r * 0.35) + u_offset).r;
    vec3 iris = u_iris_rgb * (0.45 + 1.1 * streak);
    iris *= mix(1.0, 0.35, smoothstep(0.7 * u_eye.x, u_eye.x, r));
    iris = mix(vec3(0.01), iris, smoothstep(u_eye.y - 0.03, u_eye.y + 0.03, r));
    spec_gain = 1.0;
    float in_iris = along > 0.0 ? 1.0 - smoothstep(u_eye.x - 0.04, u_eye.x + 0.04, r) : 0.0;
    return mix(sclera, iris, in_iris);
}

void main() {
    vec3 n = normalize(v_nrm);
    n = gl_FrontFacing ? n : -n;
    vec3 v = normalize(-v_pos);
    vec3 albedo;
    float hair = 0.0, spec_gain = 0.0, shininess = u_spec.y, strength = u_spec.x, wrap = 0.0;
    vec3 strand_t = vec3(0.0, 1.0, 0.0);
    float ao = v_ao;
    float inner = smoothstep(1.0, 11.5, v_ref.z);
    if (v_mat == 0 && !gl_FrontFacing) {
        albedo = vec3(0.015);  // the head's inside, seen through the open neck: a dark collar
        ao = 0.2;
    } else if (v_mat == 0) {
        albedo = skin(v_ref, hair, spec_gain, strand_t);
        wrap = 0.3;
    } else if (v_mat == 4) {
        albedo = eye(v_ref, spec_gain);
        strength = 1.4; shininess = 350.0;
    } else if (v_mat == 3) {
        albedo = u_teeth_rgb; ao *= inner;
        spec_gain = 0.5; shininess = 60.0;
    } else if (v_mat == 6) {
        albedo = vec3(0.12, 0.05, 0.05);
    } else {
        albedo = v_mat == 7 ? vec3(0.62, 0.26, 0.27) : (v_mat == 2 ? vec3(0.55, 0.2, 0.2) : vec3(0.3, 0.08, 0.08));
        ao *= inner;
        if (v_mat == 7) {
            ao = mix(ao, 0.9, clamp(u_tongue * v_noise.x * 1.5, 0.0, 1.0));
        }
        spec_gain = 0.6; shininess = 80.0;
    }
    vec3 l = normalize(u_light_dir);
    vec3 h = normalize(l + v);
    float ndl = dot(n, l);
    float diffuse = max((ndl + wrap) / (1.0 + wrap), 0.0);
    float fill = max(dot(n, normalize(u_fill_dir)), 0.0);
    vec3 ambient = mix(u_ground_rgb, u_sky_rgb, 0.5 + 0.5 * n.y) * ao;
    float spec = strength * spec_gain * pow(max(dot(n, h), 0.0), shininess) * step(0.0, ndl);
    if (hair > 0.0) {
        vec3 t = normalize(mat3(u_model_view) * strand_t);
        float th = dot(t, h);
        float kk = pow(sqrt(max(1.0 - th * th, 0.0)), 60.0) * 0.25 * step(0.0, ndl);
        spec = mix(spec, kk, hair);
    }
    vec3 color = albedo * (ambient + diffuse * u_light_rgb * mix(1.0, ao, 0.5) + fill * u_fill_rgb * ao);
    color += spec * u_light_rgb * ao;
    f_color = vec4(pow(clamp(color, 0.0, 1.0), vec3(1.0 / 2.2)), 1.0);
}
"""

#: Triangle ids (gl_PrimitiveID + 1; 0 = background) for the ICT <-> MediaPipe correspondence.
ID_FRAGMENT = """
#version 330
out int f_id;
void main() { f_id = gl_PrimitiveID + 1; }
"""

ID_VERTEX = """
#version 330
uniform mat4 u_model_view;
uniform mat4 u_proj;
in vec3 in_pos;
void main() { gl_Position = u_proj * u_model_view * vec4(in_pos, 1.0); }
"""
